# The fence: every part of keepwarm that subclasses, copies or touches private parts of
# requests, urllib3, http.client, http.cookiejar or email.
#
# Outside ``keepwarm._upstream`` no module imports a private upstream name or touches a
# private upstream attribute. What the fence depends on, name by name (kind, keepwarm's
# code, fallback, tests), is its inventory, ``INVENTORY.md`` in this directory:
# ``tests/test_upstream.py`` checks it against the code and the installed libraries. (It
# was this docstring: 17 KiB that every process using keepwarm kept in memory, for a check
# only the tests run.)

__all__: list[str] = []
