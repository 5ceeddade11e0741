"""The rules themselves: one walk over a parsed module, scope by scope.

Before a scope's statements are walked, a quick scan of that scope (not of the functions
nested in it) records how each local name is bound. A name every binding of which is a
``requests.Session()`` (``s = requests.Session()``, ``with requests.Session() as s``, a
parameter annotated ``requests.Session``) is a session the rules can follow; one bound to
anything else, even once, is not. ``self.<attr>`` is followed the same way over a whole
class. A followed session whose requests may carry a default timeout some other way (a
custom adapter mounted on it, a patched ``request``/``get`` method) is not followed for
KW103: the linter stays quiet where it cannot be sure.

The walk carries the loop depth inside the current function: a ``for``/``while`` body, a
``while`` test and the parts of a comprehension that run per item count; a ``for``'s
iterable and a comprehension's first iterable run once and do not.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from keepwarm.lint._lifecycle import (
    closed_or_handed_over,
    closed_then_used,
    escaped,
    is_main_guard,
)
from keepwarm.lint._names import (
    HTTP_METHODS,
    KEEPWARM_SESSIONS,
    MODULE_API,
    SCOPES,
    SESSION_CLASSES,
    THREAD_POOLS,
    Names,
    scope_nodes,
)
from keepwarm.lint._repeated import Repeated, find_repeated
from keepwarm.lint._rules import MESSAGES

__all__ = ["Checker", "Hit"]

#: A finding before it has a path: (line, col, code, message).
Hit = tuple[int, int, str, str]

_REQUEST_METHODS = HTTP_METHODS | {"request"}
_SESSION_CALLS = _REQUEST_METHODS | {"send"}
#: ``Session.request``'s positional parameters up to ``timeout`` (requests/sessions.py).
_REQUEST_TIMEOUT_POSITION = 8
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
_PLAIN_ADAPTER = "requests.adapters.HTTPAdapter"

#: requests' ``HTTPAdapter`` default (requests/adapters.py, ``DEFAULT_POOLSIZE``).
_DEFAULT_POOLSIZE = 10
_UNKNOWN = -1  # an argument given, but not as a literal
_HEADER_MUTATORS = frozenset({"update", "setdefault", "pop", "popitem", "clear", "__setitem__"})
_SCHEMES = ("http://", "https://")


class _Scope:
    """What the rules know about one module, class or function body."""

    def __init__(self, kind: str, parent: _Scope | None) -> None:
        self.kind = kind  # "module", "class" or "function"
        self.parent = parent
        self.bound: set[str] = set()
        self.declared: dict[str, str] = {}  # name -> "global" | "nonlocal"
        self.sessions: dict[str, str] = {}  # followed name -> "requests" | "keepwarm"
        self.custom: set[str] = set()  # followed, but a timeout may come another way
        self.created: dict[int, str] = {}  # id(Session() call) -> the local it is bound to
        self.self_name: str | None = None  # a method's first parameter
        self.cls: _Scope | None = None  # the class of a method
        self.attributes: dict[str, str] = {}  # class scopes: self.<attr> -> kind
        self.custom_attributes: set[str] = set()
        # KW106: receiver -> scheme prefix -> its mount() call (None: another prefix).
        self.mounts: dict[str, dict[str, ast.Call | None]] = {}
        self.creation_depth: dict[str, int] = {}
        self.assigned: dict[int, str] = {}  # id(Session() call) -> local, by `=` only
        self.unclosed: list[tuple[ast.Call, str]] = []  # KW109 candidates
        self.workers: list[tuple[ast.Call, int]] = []  # KW110: thread pools and their size
        self.adapters: list[tuple[ast.Call, int]] = []  # KW110: adapters and pool_maxsize
        self.plain_adapters: frozenset[str] = frozenset()  # locals bound to HTTPAdapter() only
        self.body: list[ast.stmt] = []
        self.name = ""  # a function's name, for messages
        self.params: set[str] = set()  # a function's parameters
        self.repeated: str | None = None  # why the function runs repeatedly (_repeated)
        self.handler_method = False  # its `self` is made per request
        # KW102, decided when the scope ends:
        self.candidates: list[tuple[ast.Call, str, int]] = []
        self.request_depths: dict[str, list[int]] = {}


class Checker:
    """Run every rule on one module; :meth:`run` returns the hits, unsorted."""

    def __init__(self, tree: ast.Module, names: Names, path: str = "<source>") -> None:
        self.tree = tree
        self.names = names
        self.path = path
        self.reported: set[int] = set()  # creations KW102 reported (KW109 stays quiet)
        self.hits: list[Hit] = []
        self.installed = False  # keepwarm.install() in the file: requests.get is pooled
        self.returned: set[int] = set()  # calls in a `return` inside a loop: retries
        self.retried: set[int] = set()  # calls of a retry or polling loop (sleep, then exit)
        # `s.request = partial(s.request, timeout=...)` somewhere in the file: a session
        # parameter may be one of those.
        self.patched = False
        self.repeated = Repeated()
        # KW110, by id(body): the names and `self.` attributes mounted on or handed to a
        # call anywhere in that body (nested functions included): they may get an adapter.
        self.configured: dict[int, set[str]] = {}

    def run(self) -> list[Hit]:
        nodes = list(ast.walk(self.tree))
        for node in nodes:
            if isinstance(node, ast.Call):
                if self.names.qualname(node.func) == "keepwarm.install":
                    self.installed = True
            elif isinstance(node, ast.Assign) and _wraps_a_method(node):
                self.patched = True
        self.repeated = find_repeated(nodes)
        if not self.installed:
            self._passed_module_api()
        module = _Scope("module", None)
        self._scan(module, self.tree, self.tree.body, ())
        self._body(self.tree.body, module, 0)
        self._closed(self.tree.body, module)
        self._finish(module)
        return self.hits

    # -- what a value is ---------------------------------------------------------------

    def _kind(self, value: ast.expr | None) -> str | None:
        """ "requests" for ``requests.Session()``, "keepwarm" for keepwarm's sessions."""
        if isinstance(value, ast.Call):
            name = self.names.qualname(value.func)
            if name in SESSION_CLASSES:
                return "requests"
            if name in KEEPWARM_SESSIONS:
                return "keepwarm"
        return None

    def _annotation_kind(self, annotation: ast.expr | None) -> str | None:
        if annotation is None:
            return None
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            try:
                annotation = ast.parse(annotation.value, mode="eval").body
            except SyntaxError:
                return None
        if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
            kinds = {
                self._annotation_kind(annotation.left),
                self._annotation_kind(annotation.right),
            }
            kinds.discard(None)
            return kinds.pop() if len(kinds) == 1 else None
        if isinstance(annotation, ast.Subscript) and self.names.qualname(annotation.value) is None:
            if isinstance(annotation.value, ast.Name) and annotation.value.id == "Optional":
                return self._annotation_kind(annotation.slice)
            return None
        name = self.names.qualname(annotation)
        if name in SESSION_CLASSES:
            return "requests"
        if name in KEEPWARM_SESSIONS:
            return "keepwarm"
        return None

    def _plain_adapter(self, node: ast.expr | None) -> bool:
        return isinstance(node, ast.Call) and self.names.qualname(node.func) == _PLAIN_ADAPTER

    def _custom_mount(self, call: ast.Call, plain: frozenset[str] = frozenset()) -> bool:
        """``.mount(prefix, adapter)`` with anything but a plain ``HTTPAdapter(...)`` (or a
        local name only ever bound to one, *plain*): the adapter may add a default timeout
        (the common ``TimeoutHTTPAdapter`` recipe)."""
        if len(call.args) < 2:
            return True
        adapter = call.args[1]
        if isinstance(adapter, ast.Name):
            return adapter.id not in plain
        return not self._plain_adapter(adapter)

    # -- the scan of a scope's bindings ---------------------------------------------------

    def _scan(
        self,
        scope: _Scope,
        node: ast.AST,
        body: list[ast.stmt],
        params: tuple[ast.arg, ...],
    ) -> None:
        scope.body = body
        kinds: dict[str, set[str | None]] = {}

        def bind(name: str, kind: str | None) -> None:
            scope.bound.add(name)
            kinds.setdefault(name, set()).add(kind)

        for arg in params:
            bind(arg.arg, self._annotation_kind(arg.annotation))
        handled: set[int] = set()
        mounts: list[tuple[str, ast.Call]] = []
        for child in scope_nodes(body):
            if isinstance(child, ast.Assign):
                kind = self._kind(child.value)
                if kind is None and self._plain_adapter(child.value):
                    kind = "adapter"
                # `self.s = s = Session()`: stored as well, so kept past the scope.
                stored = any(not isinstance(t, ast.Name) for t in child.targets)
                for target in child.targets:
                    if isinstance(target, ast.Name):
                        handled.add(id(target))
                        bind(target.id, kind)
                        if kind == "requests" and not stored:
                            scope.created[id(child.value)] = target.id
                            scope.assigned[id(child.value)] = target.id
            elif isinstance(child, ast.AnnAssign) and isinstance(child.target, ast.Name):
                handled.add(id(child.target))
                kind = self._kind(child.value) or (
                    self._annotation_kind(child.annotation) if child.value is None else None
                )
                bind(child.target.id, kind)
                if kind == "requests" and child.value is not None:
                    scope.created[id(child.value)] = child.target.id
            elif isinstance(child, (ast.With, ast.AsyncWith)):
                for item in child.items:
                    var = item.optional_vars
                    if isinstance(var, ast.Name):
                        handled.add(id(var))
                        kind = self._kind(item.context_expr)
                        bind(var.id, kind)
                        if kind == "requests":
                            scope.created[id(item.context_expr)] = var.id
            elif isinstance(child, ast.Name) and not isinstance(child.ctx, ast.Load):
                if id(child) not in handled:
                    bind(child.id, None)
            elif isinstance(child, (ast.Global, ast.Nonlocal)):
                for name in child.names:
                    scope.declared[name] = "global" if isinstance(child, ast.Global) else "nonlocal"
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bind(child.name, None)
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                for alias in child.names:
                    bind((alias.asname or alias.name).partition(".")[0], None)
            elif isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute):
                receiver = child.func.value
                if child.func.attr == "mount" and isinstance(receiver, ast.Name):
                    mounts.append((receiver.id, child))
            elif (
                isinstance(child, ast.Attribute)
                and isinstance(child.ctx, ast.Store)
                and isinstance(child.value, ast.Name)
                and child.attr in _SESSION_CALLS
            ):
                scope.custom.add(child.value.id)
        plain = frozenset(name for name, found in kinds.items() if found == {"adapter"})
        scope.plain_adapters = plain
        for name, found in kinds.items():
            if len(found) == 1 and name not in scope.declared:
                (kind,) = found
                if kind in ("requests", "keepwarm"):
                    scope.sessions[name] = kind
        scope.custom.update(name for name, call in mounts if self._custom_mount(call, plain))

    def _scan_class(self, scope: _Scope, node: ast.ClassDef) -> None:
        """``self.<attr>`` bindings anywhere in the class, and its class attributes."""
        kinds: dict[str, set[str | None]] = {}
        for stmt in node.body:
            if isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        kinds.setdefault(target.id, set()).add(self._kind(stmt.value))
        for child in ast.walk(node):
            value: ast.expr | None = None
            targets: list[ast.expr] = []
            if isinstance(child, ast.Assign):
                targets, value = child.targets, child.value
            elif isinstance(child, (ast.AnnAssign, ast.AugAssign)):
                targets = [child.target]
                value = child.value if isinstance(child, ast.AnnAssign) else None
            elif isinstance(child, (ast.With, ast.AsyncWith)):
                for item in child.items:
                    if _is_self_attribute(item.optional_vars):
                        targets.append(item.optional_vars)  # type: ignore[arg-type]
                        value = item.context_expr
            elif isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute):
                receiver = child.func.value
                if (
                    child.func.attr == "mount"
                    and _is_self_attribute(receiver)
                    and self._custom_mount(child)
                ):
                    scope.custom_attributes.add(receiver.attr)  # type: ignore[attr-defined]
                continue
            elif (
                isinstance(child, ast.Attribute)
                and isinstance(child.ctx, ast.Store)
                and child.attr in _SESSION_CALLS
                and _is_self_attribute(child.value)
            ):
                scope.custom_attributes.add(child.value.attr)  # type: ignore[attr-defined]
                continue
            for target in targets:
                if _is_self_attribute(target):
                    attr = target.attr  # type: ignore[attr-defined]
                    kinds.setdefault(attr, set()).add(self._kind(value))
                elif isinstance(target, (ast.Tuple, ast.List)):
                    for element in ast.walk(target):
                        if _is_self_attribute(element):
                            kinds.setdefault(element.attr, set()).add(None)  # type: ignore[attr-defined]
        for name, found in kinds.items():
            if len(found) == 1:
                (kind,) = found
                if kind is not None:
                    scope.attributes[name] = kind

    # -- the walk -----------------------------------------------------------------------

    def _body(self, body: list[ast.stmt], scope: _Scope, depth: int) -> None:
        for stmt in body:
            self._visit(stmt, scope, depth)

    def _visit(self, node: ast.AST, scope: _Scope, depth: int) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for expr in (*node.decorator_list, *_defaults(node.args), node.returns):
                if expr is not None:
                    self._visit(expr, scope, depth)
            self._function(node, node.body, scope)
        elif isinstance(node, ast.Lambda):
            for expr in _defaults(node.args):
                self._visit(expr, scope, depth)
            self._function(node, [ast.Return(node.body)], scope)
        elif isinstance(node, ast.ClassDef):
            for expr in (*node.decorator_list, *node.bases, *(k.value for k in node.keywords)):
                self._visit(expr, scope, depth)
            inner = _Scope("class", scope)
            self._scan(inner, node, node.body, ())
            self._scan_class(inner, node)
            self._body(node.body, inner, 0)
            self._finish(inner)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.While)) and _is_retry_loop(node):
            self.retried.update(id(n) for n in _loop_nodes(node) if isinstance(n, ast.Call))
            self._loop(node, scope, depth)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self._visit(node.iter, scope, depth)
            self._visit(node.target, scope, depth + 1)
            self._body(node.body, scope, depth + 1)
            self._body(node.orelse, scope, depth)
        elif isinstance(node, ast.While):
            self._visit(node.test, scope, depth + 1)
            self._body(node.body, scope, depth + 1)
            self._body(node.orelse, scope, depth)
        elif isinstance(node, ast.Return) and depth and node.value is not None:
            # ``for attempt in ...: return requests.get(...)``: one call that succeeds.
            self.returned.update(id(n) for n in ast.walk(node.value) if isinstance(n, ast.Call))
            self._visit(node.value, scope, depth)
        elif isinstance(node, _COMPREHENSIONS):
            first, *rest = node.generators
            self._visit(first.iter, scope, depth)
            for part in _comprehension_parts(node, first, rest):
                self._visit(part, scope, depth + 1)
        else:
            if isinstance(node, ast.Call):
                self._call(node, scope, depth)
            elif isinstance(node, ast.Assign):
                self._assign(node, scope)
                self._headers_store(node.targets, scope, depth)
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                self._headers_store([node.target], scope, depth)
            elif isinstance(node, ast.Delete):
                self._headers_store(node.targets, scope, depth)
            for child in ast.iter_child_nodes(node):
                self._visit(child, scope, depth)

    def _loop(self, node: ast.For | ast.AsyncFor | ast.While, scope: _Scope, depth: int) -> None:
        if isinstance(node, ast.While):
            self._visit(node.test, scope, depth + 1)
        else:
            self._visit(node.iter, scope, depth)
            self._visit(node.target, scope, depth + 1)
        self._body(node.body, scope, depth + 1)
        self._body(node.orelse, scope, depth)

    def _function(
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda,
        body: list[ast.stmt],
        scope: _Scope,
    ) -> None:
        inner = _Scope("function", scope)
        args = node.args
        params = (*args.posonlyargs, *args.args, *args.kwonlyargs)
        extra = tuple(a for a in (args.vararg, args.kwarg) if a is not None)
        self._scan(inner, node, body, (*params, *extra))
        inner.name = getattr(node, "name", "<lambda>")
        inner.params = {a.arg for a in (*params, *extra)}
        inner.repeated = self.repeated.functions.get(id(node))
        inner.handler_method = id(node) in self.repeated.handler_methods
        if scope.kind == "class" and not isinstance(node, ast.Lambda):
            positional = (*args.posonlyargs, *args.args)
            decorators = {_decorator_name(d) for d in node.decorator_list}
            if positional and not decorators & {"staticmethod", "classmethod"}:
                inner.self_name = positional[0].arg
                inner.cls = scope
        self._body(body, inner, 0)
        self._closed(body, inner)
        self._finish(inner)

    # -- the rules ------------------------------------------------------------------------

    def _hit(self, node: ast.AST, code: str, message: str) -> None:
        line = getattr(node, "lineno", 1)
        col = getattr(node, "col_offset", 0) + 1
        self.hits.append((line, col, code, message))

    def _call(self, call: ast.Call, scope: _Scope, depth: int) -> None:
        func = call.func
        name = self.names.qualname(func)
        if name in MODULE_API:
            method = name.rpartition(".")[2]
            if (
                depth
                and not self.installed
                and id(call) not in self.returned
                and id(call) not in self.retried
            ):
                self._hit(call, "KW101", MESSAGES["KW101"].format(name=name, method=method))
            elif not depth and scope.repeated is not None and not self.installed:
                message = MESSAGES["KW101-repeated"].format(
                    name=name, method=method, function=scope.name, why=scope.repeated
                )
                self._hit(call, "KW101", message)
            if not self.installed:
                self._timeout(call, name, method)
        elif name in SESSION_CLASSES and scope.created.get(id(call)) is not None:
            scope.creation_depth[scope.created[id(call)]] = depth
            if id(call) in scope.assigned:
                scope.unclosed.append((call, scope.assigned[id(call)]))
            if depth or scope.kind == "function":
                scope.candidates.append((call, scope.created[id(call)], depth))
        elif name == _PLAIN_ADAPTER:
            self._adapter(call, scope)
        elif name in THREAD_POOLS:
            size = _int_argument(call, "max_workers", 0)
            if size is not None and size != _UNKNOWN:
                scope.workers.append((call, size))
        elif isinstance(func, ast.Attribute) and func.attr == "mount":
            self._mount(call, scope)
        elif (
            (depth or scope.repeated is not None)
            and isinstance(func, ast.Attribute)
            and func.attr in _HEADER_MUTATORS
            and isinstance(func.value, ast.Attribute)
            and func.value.attr == "headers"
            and self._mutable_session(func.value.value, scope, depth)
        ):
            self._headers_hit(call, f"{_dotted(func.value)}.{func.attr}()", scope, depth)
        elif isinstance(func, ast.Attribute) and func.attr in _SESSION_CALLS:
            receiver = func.value
            kind, label = self._receiver(receiver, scope)
            if self._kind(receiver) == "requests":
                self._hit(call, "KW102", MESSAGES["KW102-call"])
            if isinstance(receiver, ast.Name) and receiver.id in scope.created.values():
                scope.request_depths.setdefault(receiver.id, []).append(depth)
            if kind == "requests" and func.attr != "send":
                self._timeout(call, f"{label}.{func.attr}", func.attr)
        if (name is not None and name.startswith(("requests.", "keepwarm."))) or (
            isinstance(func, ast.Attribute) and func.attr in _SESSION_CALLS
        ):
            for keyword in call.keywords:
                if keyword.arg == "verify" and _is_false(keyword.value):
                    self._hit(keyword.value, "KW104", MESSAGES["KW104-call"])

    def _timeout(self, call: ast.Call, name: str, method: str) -> None:
        if any(k.arg is None or k.arg == "timeout" for k in call.keywords):
            return  # **kwargs may carry one
        if any(isinstance(a, ast.Starred) for a in call.args):
            return
        if method == "request" and len(call.args) > _REQUEST_TIMEOUT_POSITION:
            return
        self._hit(call, "KW103", MESSAGES["KW103"].format(name=name))

    def _receiver(
        self, node: ast.expr, scope: _Scope, timeout: bool = True
    ) -> tuple[str | None, str]:
        """The kind of session *node* is ("requests", "keepwarm" or None) and how to name
        it in a message; for KW103 (*timeout*) a session that may get a default timeout
        another way counts as None."""
        if isinstance(node, ast.Name):
            found = _lookup(scope, node.id)
            if found is None or (timeout and node.id in found.custom):
                return None, node.id
            if timeout and self.patched and node.id in found.params:
                return None, node.id
            return found.sessions.get(node.id), node.id
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            cls = scope.cls
            if cls is not None and node.value.id == scope.self_name:
                if timeout and node.attr in cls.custom_attributes:
                    return None, ""
                return cls.attributes.get(node.attr), f"{node.value.id}.{node.attr}"
            return None, ""
        kind = self._kind(node)
        return kind, "requests.Session()"

    def _assign(self, node: ast.Assign, scope: _Scope) -> None:
        if not _is_false(node.value):
            return
        for target in node.targets:
            if isinstance(target, ast.Attribute) and target.attr == "verify":
                kind, _ = self._receiver(target.value, scope)
                named = _last_name(target.value)
                if kind is not None or "session" in named.lower():
                    self._hit(target, "KW104", MESSAGES["KW104-attr"])

    def _key(self, node: ast.expr, scope: _Scope) -> str | None:
        """``s`` or ``self.http`` for a session the rules follow, else None."""
        if not isinstance(node, (ast.Name, ast.Attribute)):
            return None
        kind, label = self._receiver(node, scope, timeout=False)
        return label if kind is not None and label else None

    def _mutable_session(self, node: ast.expr, scope: _Scope, depth: int) -> bool:
        """In a loop: a followed session made before the loop (one made in it is KW102's
        business). Outside loops, in a function that runs repeatedly: a followed session
        that outlives the run (bound at module level or in an enclosing function, a
        ``self`` attribute unless ``self`` is made per request, or a parameter), not one
        the function makes itself."""
        if self._key(node, scope) is None:
            return False
        if depth:
            made = scope.creation_depth.get(node.id) if isinstance(node, ast.Name) else None
            return made is None or made < depth
        if scope.repeated is None:
            return False
        if isinstance(node, ast.Name):
            return _lookup(scope, node.id) is not scope or node.id in scope.params
        return not scope.handler_method

    def _headers_hit(self, node: ast.AST, target: str, scope: _Scope, depth: int) -> None:
        if depth:
            self._hit(node, "KW107", MESSAGES["KW107"].format(target=target))
        else:
            message = MESSAGES["KW107-repeated"].format(
                target=target, function=scope.name, why=scope.repeated
            )
            self._hit(node, "KW107", message)

    def _headers_store(self, targets: list[ast.expr], scope: _Scope, depth: int) -> None:
        if not depth and scope.repeated is None:
            return
        for target in targets:
            if (
                isinstance(target, ast.Subscript)
                and isinstance(target.value, ast.Attribute)
                and target.value.attr == "headers"
                and self._mutable_session(target.value.value, scope, depth)
            ):
                self._headers_hit(target, f"{_dotted(target.value)}[...]", scope, depth)

    def _passed_module_api(self) -> None:
        """KW101 for ``requests.get`` itself handed to a repeating caller
        (``executor.map(requests.get, urls)``)."""
        for target, caller, why in self.repeated.passed:
            name = self.names.qualname(target)
            if name in MODULE_API:
                method = name.rpartition(".")[2]
                message = MESSAGES["KW101-passed"].format(
                    name=name, caller=caller, why=why, method=method
                )
                self._hit(target, "KW101", message)

    def _adapter(self, call: ast.Call, scope: _Scope) -> None:
        size = _int_argument(call, "pool_maxsize", 1)
        if size is None:
            size = _DEFAULT_POOLSIZE
        if size != _UNKNOWN:
            scope.adapters.append((call, size))
        keywords = {k.arg for k in call.keywords}
        if (
            "pool_maxsize" in keywords
            and not call.args
            and not keywords & {"pool_connections", None}
        ):
            self._hit(call, "KW105", MESSAGES["KW105"])

    def _mount(self, call: ast.Call, scope: _Scope) -> None:
        receiver = call.func.value  # type: ignore[attr-defined]
        owner = scope
        if isinstance(receiver, ast.Name):
            key = receiver.id
        elif _is_self_attribute(receiver) and scope.cls is not None:
            key, owner = _dotted(receiver), scope.cls
        else:
            return
        prefix = call.args[0] if call.args else None
        text = prefix.value if isinstance(prefix, ast.Constant) else None
        mounts = owner.mounts.setdefault(key, {})
        # Only a plain HTTPAdapter's tuning is missed on the other scheme: a custom adapter
        # is often about TLS (client certificates, SSL versions, SNI) and https-only.
        if (
            text in _SCHEMES
            and isinstance(text, str)
            and not self._custom_mount(call, scope.plain_adapters)
        ):
            mounts[text] = call
        else:
            mounts["other"] = None

    def _closed(self, body: list[ast.stmt], scope: _Scope) -> None:
        for call, line in closed_then_used(body, lambda node: self._key(node, scope)):
            key = _dotted(call.func.value)  # type: ignore[attr-defined]
            method = call.func.attr  # type: ignore[attr-defined]
            self._hit(call, "KW108", MESSAGES["KW108"].format(key=key, method=method, line=line))

    def _finish(self, scope: _Scope) -> None:
        """The rules decided when a scope ends: KW106, KW110, KW102 and KW109 (which stays
        quiet about a session KW102 reported)."""
        for mounts in scope.mounts.values():
            schemes = [mounts[p] for p in _SCHEMES if p in mounts]
            if "other" not in mounts and len(schemes) == 1 and schemes[0] is not None:
                (prefix,) = (p for p in _SCHEMES if p in mounts)
                other = _SCHEMES[1 - _SCHEMES.index(prefix)]
                message = MESSAGES["KW106"].format(prefix=prefix, other=other)
                self._hit(schemes[0], "KW106", message)
        for adapter, size in scope.adapters:
            larger = [(workers, pool) for pool, workers in scope.workers if workers > size]
            if larger:
                workers, pool = max(larger, key=lambda pair: pair[0])
                message = MESSAGES["KW110"].format(size=size, workers=workers, line=pool.lineno)
                self._hit(adapter, "KW110", message)
        if not self.installed:
            self._default_pool(scope)
        self._per_call(scope)
        self._never_closed(scope)

    def _default_pool(self, scope: _Scope) -> None:
        """KW110 for a session on requests' default pool (no adapter mounted anywhere in
        the file, never handed to a call that might mount one) used by the tasks of a
        thread pool larger than that, in the same scope."""
        large = [(pool, size) for pool, size in scope.workers if size > _DEFAULT_POOLSIZE]
        if not large:
            return
        for pool, size in large:
            variables: set[str] = set()  # `with ThreadPoolExecutor(32) as pool`, `pool = ...`
            for node in scope_nodes(scope.body):
                if isinstance(node, (ast.With, ast.AsyncWith)):
                    variables.update(
                        item.optional_vars.id
                        for item in node.items
                        if item.context_expr is pool and isinstance(item.optional_vars, ast.Name)
                    )
                elif isinstance(node, ast.Assign) and node.value is pool:
                    variables.update(t.id for t in node.targets if isinstance(t, ast.Name))
            session = None
            for node in scope_nodes(scope.body):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("map", "submit")
                ):
                    continue
                receiver = node.func.value
                if receiver is pool or (
                    isinstance(receiver, ast.Name) and receiver.id in variables
                ):
                    session = self._default_pool_session(node, scope)
                    if session is not None:
                        break
            if session is not None:
                message = MESSAGES["KW110-default"].format(session=session, workers=size)
                self._hit(pool, "KW110", message)

    def _default_pool_session(self, call: ast.Call, scope: _Scope) -> str | None:
        """The first session on requests' default pool used in the arguments of *call*."""
        shadowed = {
            a.arg for node in ast.walk(call) if isinstance(node, ast.Lambda) for a in _params(node)
        }
        for node in ast.walk(call):
            if isinstance(node, ast.Name) and node.id not in shadowed:
                found = _lookup(scope, node.id)
                if (
                    found is not None
                    and found.sessions.get(node.id) == "requests"
                    and node.id not in found.params
                    and node.id not in found.custom
                    and node.id not in self._configured(found.body)
                ):
                    return node.id
            elif _is_self_attribute(node) and scope.cls is not None:
                key = _dotted(node)  # type: ignore[arg-type]
                attr = node.attr  # type: ignore[attr-defined]
                if (
                    scope.cls.attributes.get(attr) == "requests"
                    and attr not in scope.cls.custom_attributes
                    and key not in self._configured(scope.cls.body)
                ):
                    return key
        return None

    def _configured(self, body: list[ast.stmt]) -> set[str]:
        """``s`` and ``self.s`` mounted on (``s.mount(...)``) or handed to a call
        (``configure(s)``) anywhere in *body*: an adapter may be mounted that way."""
        found = self.configured.get(id(body))
        if found is None:
            found = set()
            for node in (n for stmt in body for n in ast.walk(stmt)):
                if not isinstance(node, ast.Call):
                    continue
                if isinstance(node.func, ast.Attribute) and node.func.attr == "mount":
                    found.add(_dotted(node.func.value))
                for argument in (*node.args, *(k.value for k in node.keywords)):
                    if isinstance(argument, ast.Name) or _is_self_attribute(argument):
                        found.add(_dotted(argument))
            self.configured[id(body)] = found
        return found

    def _per_call(self, scope: _Scope) -> None:
        """KW102: a session bound to a local that does not escape the scope and serves one
        request (or one pass of the loop it was made in)."""
        if not scope.candidates:
            return
        kept = escaped(scope.body, {var for _, var, _ in scope.candidates})
        for call, var, depth in scope.candidates:
            if var in kept or scope.sessions.get(var) != "requests":
                continue  # kept alive, or the name is bound to something else too
            depths = scope.request_depths.get(var, [])
            if not depths or any(d > depth for d in depths):
                continue  # no request, or the session serves a loop of them
            if depth:
                self._hit(call, "KW102", MESSAGES["KW102-loop"])
                self.reported.add(id(call))
            elif len(depths) == 1:
                self._hit(call, "KW102", MESSAGES["KW102-call"])
                self.reported.add(id(call))

    def _never_closed(self, scope: _Scope) -> None:
        """KW109: a session bound with ``=`` in a function (or at the top of a script or a
        test module), followed, not kept alive past the scope and never closed there."""
        candidates = [
            (call, var)
            for call, var in scope.unclosed
            if id(call) not in self.reported and scope.sessions.get(var) == "requests"
        ]
        if not candidates:
            return
        if scope.kind == "module":
            if not self._script_or_test():
                return
            kept = closed_or_handed_over(self.tree.body, {v for _, v in candidates}, True)
        elif scope.kind == "function":
            names = {v for _, v in candidates}
            kept = escaped(scope.body, names) | closed_or_handed_over(scope.body, names, False)
            kept |= _served_forever(scope.body, names)
        else:
            return
        for call, var in candidates:
            if var not in kept and self._requested(var, scope):
                self._hit(call, "KW109", MESSAGES["KW109"].format(var=var))

    def _requested(self, var: str, scope: _Scope) -> bool:
        """Whether session *var* sends a request (else it opened no connection to leave
        open): in its function, or anywhere in the file for a module-level one."""
        if scope.kind != "module":
            return var in scope.request_depths
        return any(
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _SESSION_CALLS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == var
            for node in ast.walk(self.tree)
        )

    def _script_or_test(self) -> bool:
        name = self.path.replace("\\", "/").rpartition("/")[2]
        if name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py":
            return True
        return any(is_main_guard(stmt) for stmt in self.tree.body)


def _lookup(scope: _Scope, name: str) -> _Scope | None:
    """The scope whose binding of *name* a use in *scope* sees (Python's rules: class
    bodies are skipped from the functions inside them)."""
    current: _Scope | None = scope
    first = True
    while current is not None:
        declared = current.declared.get(name)
        if declared == "global":
            while current.parent is not None:
                current = current.parent
            return current if name in current.bound else None
        if (first or current.kind != "class") and name in current.bound and declared is None:
            return current
        first = False
        current = current.parent
    return None


_LOOPS = (ast.For, ast.AsyncFor, ast.While)


def _wraps_a_method(node: ast.Assign) -> bool:
    """``s.request = functools.partial(s.request, timeout=...)`` or ``= lambda ...``: the
    default-timeout recipe (not ``response.request = ...``, a plain attribute)."""
    value = node.value
    wrapper = isinstance(value, ast.Lambda) or (
        isinstance(value, ast.Call) and _last_name(value.func) == "partial"
    )
    return wrapper and any(
        isinstance(target, ast.Attribute) and target.attr in _SESSION_CALLS
        for target in node.targets
    )


def _loop_nodes(loop: ast.For | ast.AsyncFor | ast.While) -> Iterator[ast.AST]:
    """The nodes of *loop*'s body and test that run once per pass of this loop itself:
    nested loops, comprehensions and functions are left out."""
    stack: list[ast.AST] = [*loop.body, loop.test] if isinstance(loop, ast.While) else [*loop.body]
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (*SCOPES, *_LOOPS, *_COMPREHENSIONS)):
            stack.extend(ast.iter_child_nodes(node))


def _is_retry_loop(loop: ast.For | ast.AsyncFor | ast.While) -> bool:
    """A retry or polling loop: it sleeps (``time.sleep``, ``asyncio.sleep``) and leaves
    (``break``, ``return``) on success. Its requests run until one works, seconds apart,
    where a kept connection is worth little (and often already closed by the server)."""
    sleeps = leaves = False
    for node in _loop_nodes(loop):
        if isinstance(node, ast.Call) and _last_name(node.func) == "sleep":
            sleeps = True
        elif isinstance(node, (ast.Break, ast.Return)):
            leaves = True
    return sleeps and leaves


def _served_forever(body: list[ast.stmt], names: set[str]) -> set[str]:
    """Which of *names* send requests in a loop meant to run until the process stops
    (``while True:``, ``while not stop.is_set():``): the session lives as long as a
    module-level one would (changedetection.io's daily version check thread)."""
    found: set[str] = set()
    for node in scope_nodes(body):
        if not isinstance(node, ast.While) or not _forever(node.test):
            continue
        for inner in (n for stmt in node.body for n in ast.walk(stmt)):
            if (
                isinstance(inner, ast.Call)
                and isinstance(inner.func, ast.Attribute)
                and inner.func.attr in _SESSION_CALLS
                and isinstance(inner.func.value, ast.Name)
                and inner.func.value.id in names
            ):
                found.add(inner.func.value.id)
    return found


def _forever(test: ast.expr) -> bool:
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test = test.operand
        return isinstance(test, ast.Call) and _last_name(test.func) == "is_set"
    return isinstance(test, ast.Constant) and bool(test.value)


def _comprehension_parts(
    node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp,
    first: ast.comprehension,
    rest: list[ast.comprehension],
) -> Iterator[ast.AST]:
    yield first.target
    yield from first.ifs
    for generator in rest:
        yield generator.target
        yield generator.iter
        yield from generator.ifs
    if isinstance(node, ast.DictComp):
        yield node.key
        yield node.value
    else:
        yield node.elt


def _params(node: ast.Lambda | ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.arg]:
    args = node.args
    extra = [a for a in (args.vararg, args.kwarg) if a is not None]
    return [*args.posonlyargs, *args.args, *args.kwonlyargs, *extra]


def _defaults(args: ast.arguments) -> list[ast.expr]:
    found: list[ast.expr] = [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
    for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
        if arg is not None and arg.annotation is not None:
            found.append(arg.annotation)
    return found


def _decorator_name(node: ast.expr) -> str:
    return _last_name(node.func if isinstance(node, ast.Call) else node)


def _int_argument(call: ast.Call, keyword: str, position: int) -> int | None:
    """The literal integer given as *keyword* (or at *position*); None when it is not
    given at all; ``_UNKNOWN`` when it is given but not as a literal (a variable,
    ``**kwargs``)."""
    for k in call.keywords:
        if k.arg == keyword:
            value = k.value
            break
        if k.arg is None:
            return _UNKNOWN
    else:
        if any(isinstance(a, ast.Starred) for a in call.args):
            return _UNKNOWN
        if len(call.args) <= position:
            return None
        value = call.args[position]
    if isinstance(value, ast.Constant) and type(value.value) is int and value.value >= 0:
        return value.value
    return _UNKNOWN


def _dotted(node: ast.expr) -> str:
    """``self.http.headers`` for that expression; ``...`` for what is not a dotted name."""
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else "..."


def _last_name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _is_self_attribute(node: ast.AST | None) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in ("self", "cls")
    )


def _is_false(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is False
