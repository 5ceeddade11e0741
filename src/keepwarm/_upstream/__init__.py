"""The fence: every part of keepwarm that subclasses, copies or touches private parts of
requests, urllib3, http.client, http.cookiejar or email.

(The inventory of what each module here depends on follows in the next commit.)
"""

__all__: list[str] = []
