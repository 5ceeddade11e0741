# The checks every setting goes through, with errors that name the setting and what it takes.
#
# ``fail_type`` / ``fail_value`` raise ``TypeError`` / ``ValueError`` worded the same way for
# every knob: ``pool_maxsize='big' is not valid: pool_maxsize must be a whole number >= 1``.

from __future__ import annotations

import math
from typing import Any, NoReturn

__all__ = ["check_seconds", "fail_type", "fail_value"]


def fail_type(setting: str, value: object, allowed: str) -> NoReturn:
    raise TypeError(f"{setting}={value!r} is not valid: {setting} must be {allowed}")


def fail_value(setting: str, value: object, allowed: str) -> NoReturn:
    raise ValueError(f"{setting}={value!r} is not valid: {setting} must be {allowed}")


def check_seconds(
    setting: str, value: object, *, allow_none: bool = False, allow_zero: bool = False
) -> Any:
    # A finite, positive number of seconds (or ``None`` where that means no limit).
    if value is None and allow_none:
        return None
    allowed = "a positive number of seconds" + (" or None" if allow_none else "")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail_type(setting, value, allowed)
    if math.isnan(value) or math.isinf(value):
        hint = "; use keepwarm.NO_TIMEOUT to wait forever" if "timeout" in setting else ""
        fail_value(setting, value, allowed + hint)
    if value < 0 or (value == 0 and not allow_zero):
        fail_value(setting, value, allowed)
    return float(value)
