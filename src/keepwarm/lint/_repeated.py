"""Which functions of a module run repeatedly (KW101, KW107): once per request, per task
message, per scheduled run, or per item of a ``map()``, so that a connection opened in
their body is opened again on every run.

The set is small on purpose: each entry is a convention strong enough that a false alarm
is unlikely (a false alarm costs more trust than a miss). A function counts when:

* it is decorated as a route: ``@app.route("/x")``, ``@app.get("/x")``,
  ``@router.post("")`` (Flask, Quart, FastAPI, Starlette, Sanic, Bottle, aiohttp's
  ``routes``): a decorator named ``route``/``get``/``post``/... called with a path, a
  string that is empty or starts with ``/``;
* it is decorated as a view: Django REST framework's ``@api_view``, Django's
  ``@require_GET``, ``@require_POST``, ``@require_safe``, ``@require_http_methods``;
* it is decorated as a task that handles an event: Celery's ``@shared_task`` and
  ``@<app>.task`` (Huey's too), Dramatiq's ``@dramatiq.actor``, with a parameter for the
  event's data (besides ``self`` under ``bind=True``). A task without one is a periodic
  job (pretix's hourly exchange-rate fetch). A bare ``@task``, as Invoke, Fabric, Prefect
  and Airflow spell theirs, does not count: those often run once;
* it is a scheduled job that runs at least once a minute, by a literal interval:
  APScheduler's ``@<scheduler>.scheduled_job("interval", seconds=10)``, schedule's
  ``@repeat(every(10).seconds)``, Celery's ``@periodic_task(run_every=30)``. A job
  further apart finds its connection closed anyway: servers drop idle keep-alive
  connections after 5 s (Apache) to 60-75 s (AWS ALB, nginx);
* it is a request-handler method: ``do_GET``... of ``BaseHTTPRequestHandler``,
  ``handle`` of ``socketserver``'s handlers, ``get``/``post``/... of Django's ``View``
  family, Flask's ``MethodView``, Django REST framework's ``APIView`` and viewsets
  (with ``list``, ``retrieve``...), Tornado's ``RequestHandler``, Starlette's
  ``HTTPEndpoint``, recognised by the base class's name;
* the same module hands it to something that calls it once per item or per run: the
  first argument of ``map()``, of ``<pool>.map``/``imap``/``imap_unordered``/
  ``starmap``; ``<pool>.submit(f)``, ``<pool>.apply_async(f)``, ``Thread(target=f)`` or
  ``Process(target=f)`` inside a loop or a comprehension; schedule's
  ``every(10).seconds.do(f)`` and APScheduler's ``add_job(f, "interval", seconds=10)``
  (at least once a minute, as above); Flask's ``add_url_rule(..., view_func=f)``. ``f``
  (or ``functools.partial(f, ...)``) is a lambda, a function of the module defined under
  that name exactly once, or ``self.<method>`` of the class the call is in.

A function that is only *called* from a loop elsewhere is not followed (the linter does
not build a call graph), nor are callbacks in general: a miss, not a false alarm.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

__all__ = ["Repeated", "find_repeated"]

_ROUTES = frozenset(
    {"route", "get", "post", "put", "patch", "delete", "head", "options", "api_route"}
)
_VIEWS = frozenset(
    {"api_view", "require_GET", "require_POST", "require_safe", "require_http_methods"}
)
_NOT_CELERY = frozenset({"invoke", "fabric", "prefect", "airflow", "luigi", "nox", "dagster"})
_VERBS = frozenset({"get", "post", "put", "patch", "delete", "head", "options"})
_VIEWSET_ACTIONS = _VERBS | {"list", "retrieve", "create", "update", "partial_update", "destroy"}
#: Request-handler base classes (by their last name) and the methods run per request.
_HANDLER_BASES: dict[str, frozenset[str]] = {
    **dict.fromkeys(
        ("BaseHTTPRequestHandler", "SimpleHTTPRequestHandler", "CGIHTTPRequestHandler"),
        frozenset({"do_GET", "do_POST", "do_PUT", "do_PATCH", "do_DELETE", "do_HEAD"}),
    ),
    **dict.fromkeys(
        ("BaseRequestHandler", "StreamRequestHandler", "DatagramRequestHandler"),
        frozenset({"handle"}),
    ),
    **dict.fromkeys(
        (
            "View",
            "TemplateView",
            "RedirectView",
            "ListView",
            "DetailView",
            "FormView",
            "CreateView",
            "UpdateView",
            "DeleteView",
            "MethodView",
            "APIView",
            "GenericAPIView",
            "RequestHandler",
            "HTTPEndpoint",
        ),
        _VERBS,
    ),
    **dict.fromkeys(
        ("ViewSet", "GenericViewSet", "ModelViewSet", "ReadOnlyModelViewSet"),
        _VIEWSET_ACTIONS,
    ),
}
_MAPS = frozenset({"map", "imap", "imap_unordered", "starmap"})
_IN_LOOP = frozenset({"submit", "apply_async"})
_THREADS = frozenset({"Thread", "Process"})

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


@dataclass
class Repeated:
    """What :func:`find_repeated` found in one module."""

    #: id(function or lambda node) -> why it runs repeatedly ("once per request"...).
    functions: dict[int, str] = field(default_factory=dict)
    #: id(method node) of request-handler classes: their instance (``self``) is made per
    #: request, so its attributes are not shared.
    handler_methods: set[int] = field(default_factory=set)
    #: Expressions handed to a repeating caller as the function to call, with the caller's
    #: name and why (``executor.map(requests.get, urls)``).
    passed: list[tuple[ast.expr, str, str]] = field(default_factory=list)
    #: id(call) of the callers that repeat only inside a loop (``submit``, ``Thread``).
    in_loop_only: set[int] = field(default_factory=set)


def find_repeated(nodes: list[ast.AST]) -> Repeated:
    """The functions that run repeatedly, and the expressions passed to be, among *nodes*:
    every node of one module (``list(ast.walk(tree))``, which the checker walks anyway:
    this adds no walk of its own to the common file)."""
    found = Repeated()
    functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
    classes: list[ast.ClassDef] = []
    methods_of_classes: set[int] = set()
    loops: list[ast.AST] = []
    sites: list[tuple[ast.Call, ast.expr, str, str]] = []
    needs_loops = False
    for node in nodes:
        if isinstance(node, _FUNCTIONS):
            functions.append(node)
            if node.decorator_list:
                why = _decorated(node)
                if why is not None:
                    found.functions[id(node)] = why
        elif isinstance(node, ast.ClassDef):
            classes.append(node)
            _handler_methods(node, found)
            methods_of_classes.update(id(stmt) for stmt in node.body)
        elif isinstance(node, (*_LOOPS, *_COMPREHENSIONS)):
            loops.append(node)
        elif isinstance(node, ast.Call):
            for passed, caller, why, in_loop_only in _call_sites(node):
                sites.append((node, _unwrap_partial(passed), caller, why))
                needs_loops |= in_loop_only
                if in_loop_only:
                    found.in_loop_only.add(id(node))
    if not sites:
        return found
    looped = _calls_in_loops(loops) if needs_loops else set()
    owners: dict[int, ast.ClassDef] = {}
    if any(_is_self_method(target) for _, target, _, _ in sites):
        for cls in classes:  # outer classes first (breadth first): inner ones win
            owners.update((id(n), cls) for n in ast.walk(cls) if isinstance(n, ast.Call))
    by_name: dict[str, list[ast.AST]] = {}
    for function in functions:
        if id(function) not in methods_of_classes:
            by_name.setdefault(function.name, []).append(function)
    wanted: list[tuple[str, str]] = []  # (function name, why)
    methods: list[tuple[ast.ClassDef, str, str]] = []  # (class, method name, why)
    for call, target, caller, why in sites:
        if id(call) in found.in_loop_only and id(call) not in looped:
            continue
        found.passed.append((target, caller, why))
        if isinstance(target, ast.Lambda):
            found.functions[id(target)] = why
        elif isinstance(target, ast.Name):
            wanted.append((target.id, why))
        elif _is_self_method(target) and id(call) in owners:
            methods.append((owners[id(call)], target.attr, why))  # type: ignore[attr-defined]
    for name, why in wanted:
        defined = by_name.get(name, [])
        if len(defined) == 1:
            found.functions.setdefault(id(defined[0]), why)
    for cls, name, why in methods:
        for stmt in cls.body:
            if isinstance(stmt, _FUNCTIONS) and stmt.name == name:
                found.functions.setdefault(id(stmt), why)
    return found


def _is_self_method(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    )


def _calls_in_loops(loops: list[ast.AST]) -> set[int]:
    """The calls that run once per pass of a loop or a comprehension (a function defined
    in a loop runs when called, not per pass; a ``for``'s iterable and ``else`` run once)."""
    found: set[int] = set()
    for loop in loops:
        if isinstance(loop, (ast.For, ast.AsyncFor)):
            stack: list[ast.AST] = [*loop.body]
        elif isinstance(loop, ast.While):
            stack = [loop.test, *loop.body]
        else:
            stack = [loop]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Call):
                found.add(id(node))
            if not isinstance(node, (*_FUNCTIONS, ast.Lambda, ast.ClassDef)):
                stack.extend(ast.iter_child_nodes(node))
    return found


def _unwrap_partial(node: ast.expr) -> ast.expr:
    """``f`` for ``functools.partial(f, ...)``: it runs whenever the partial does."""
    while (
        isinstance(node, ast.Call)
        and _last_name(node.func) == "partial"
        and node.args
        and not isinstance(node.args[0], ast.Starred)
    ):
        node = node.args[0]
    return node


def _last_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def _decorated(function: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    for decorator in function.decorator_list:
        call = decorator if isinstance(decorator, ast.Call) else None
        func = call.func if call is not None else decorator
        name = _last_name(func)
        receiver = func.value if isinstance(func, ast.Attribute) else None
        receiver_name = _last_name(receiver) if receiver is not None else None
        if name in _ROUTES and call is not None and _is_route_path(call):
            return "once per request (a route handler)"
        if name in _VIEWS:
            return "once per request (a view)"
        task = name == "shared_task" or (name == "actor" and receiver_name == "dramatiq")
        if name == "task" and receiver is not None and receiver_name not in _NOT_CELERY:
            task = True
        if task and _takes_an_event(function, call):
            return "once per task message"
        seconds = None
        if name == "scheduled_job" and receiver is not None and call is not None:
            seconds = _apscheduler_interval(call, 0)
        elif name == "repeat" and call is not None and call.args:
            seconds = _every_interval(call.args[0])
        elif name == "periodic_task" and call is not None:
            seconds = _run_every(call)
        if seconds is not None and seconds <= _OFTEN:
            return f"every {seconds:g} s (a scheduled job)"
    return None


def _takes_an_event(
    function: ast.FunctionDef | ast.AsyncFunctionDef, call: ast.Call | None
) -> bool:
    """Whether a task takes the data of the event it handles: a parameter besides the task
    itself (``bind=True``). A task without one is a periodic job (pretix's hourly
    exchange-rate fetch), whose connections would not outlive the pause between runs."""
    args = function.args
    params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    bound = call is not None and any(
        k.arg == "bind" and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in call.keywords
    )
    if bound and params:
        params = params[1:]
    return bool(params) or args.vararg is not None or args.kwarg is not None


#: A job that runs at least this often (seconds) finds its connection still open: servers
#: close idle keep-alive connections after 5 s (Apache) to 60-75 s (AWS ALB, nginx).
_OFTEN = 60.0
_UNITS = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0, "days": 86400.0, "weeks": 604800.0}


def _number(node: ast.expr | None) -> float | None:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    ):
        return float(node.value)
    return None


def _duration(keywords: list[ast.keyword]) -> float | None:
    """``seconds=10, minutes=1`` as seconds; None if any part is not a literal."""
    total = 0.0
    found = False
    for keyword in keywords:
        unit = _UNITS.get(keyword.arg or "")
        if unit is None:
            continue
        value = _number(keyword.value)
        if value is None:
            return None
        total += value * unit
        found = True
    return total if found else None


def _apscheduler_interval(call: ast.Call, position: int) -> float | None:
    """APScheduler: ``("interval", seconds=10)`` at *position* (or ``trigger=``)."""
    trigger = call.args[position] if len(call.args) > position else None
    for keyword in call.keywords:
        if keyword.arg == "trigger":
            trigger = keyword.value
    if not (isinstance(trigger, ast.Constant) and trigger.value == "interval"):
        return None
    return _duration(call.keywords)


def _every_interval(node: ast.expr) -> float | None:
    """schedule: ``every(10).seconds``, ``every().second``, ``every(2).minutes``."""
    while isinstance(node, ast.Call):  # ``.at(...)``, ``.until(...)``
        node = node.func.value if isinstance(node.func, ast.Attribute) else node.func
    if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Call)):
        return None
    every = node.value
    if _last_name(every.func) != "every":
        return None
    unit = _UNITS.get(node.attr if node.attr.endswith("s") else node.attr + "s")
    count = _number(every.args[0]) if every.args else 1.0
    if unit is None or count is None:
        return None
    return count * unit


def _run_every(call: ast.Call) -> float | None:
    """Celery's ``@periodic_task(run_every=30)`` or ``run_every=timedelta(seconds=30)``."""
    for keyword in call.keywords:
        if keyword.arg == "run_every":
            value = keyword.value
            if isinstance(value, ast.Call) and _last_name(value.func) == "timedelta":
                return _duration(value.keywords)
            return _number(value)
    return None


def _is_route_path(call: ast.Call) -> bool:
    path = call.args[0] if call.args else None
    for keyword in call.keywords:
        if keyword.arg in ("path", "rule", "uri"):
            path = keyword.value
    return (
        isinstance(path, ast.Constant)
        and isinstance(path.value, str)
        and (path.value == "" or path.value.startswith("/"))
    )


def _handler_methods(node: ast.ClassDef, found: Repeated) -> None:
    run: set[str] = set()
    bases: list[str] = []
    for base in node.bases:
        name = _last_name(base)
        if name in _HANDLER_BASES:
            run |= _HANDLER_BASES[name]
            bases.append(name)
    if not run:
        return
    for stmt in node.body:
        if isinstance(stmt, _FUNCTIONS) and stmt.name in run:
            found.functions[id(stmt)] = f"once per request (a `{bases[0]}` method)"
            found.handler_methods.add(id(stmt))


def _call_sites(call: ast.Call) -> list[tuple[ast.expr, str, str, bool]]:
    """The function arguments of *call* that it runs repeatedly: (argument, caller, why,
    whether that holds only when the call itself is in a loop)."""
    func = call.func
    name = _last_name(func)
    first = call.args[0] if call.args else None
    if name is None:
        return []
    if name == "map" and isinstance(func, ast.Name) and first is not None and len(call.args) > 1:
        return [(first, "map()", "once per item of `map()`", False)]
    if isinstance(func, ast.Attribute) and name in _MAPS and first is not None:
        return [(first, f".{name}()", f"once per item of `.{name}()`", False)]
    if isinstance(func, ast.Attribute) and name in _IN_LOOP and first is not None:
        return [(first, f".{name}()", f"once per loop iteration (`.{name}()` in a loop)", True)]
    if name in _THREADS:
        return [
            (k.value, f"{name}()", f"once per loop iteration (a `{name}` made in a loop)", True)
            for k in call.keywords
            if k.arg == "target"
        ]
    if name == "do" and isinstance(func, ast.Attribute) and first is not None:
        seconds = _every_interval(func.value)
        if seconds is not None and seconds <= _OFTEN:
            return [(first, ".do()", f"every {seconds:g} s (a scheduled job)", False)]
    if name == "add_job" and isinstance(func, ast.Attribute) and first is not None:
        seconds = _apscheduler_interval(call, 1)
        if seconds is not None and seconds <= _OFTEN:
            return [(first, ".add_job()", f"every {seconds:g} s (a scheduled job)", False)]
    if name == "add_url_rule" and isinstance(func, ast.Attribute):
        return [
            (k.value, ".add_url_rule()", "once per request (a view function)", False)
            for k in call.keywords
            if k.arg == "view_func"
        ]
    return []
