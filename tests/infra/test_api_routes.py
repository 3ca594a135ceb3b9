"""Every route a handler serves is wired in the synthesized API, and every wired route has a handler.

The served routes are read from the handlers themselves: a Powertools resolver's route decorators
(``@app.get("/models/<model>")``), and the inference handler's ``ROUTES``. The wired routes are read
from the synthesized template: each API Gateway method, its resource path, and the code asset of the
Lambda function it integrates (matched to ``functions/<name>/handler.py`` by content).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import Synthesized

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
_METHODS = {"get", "post", "put", "delete", "patch", "head"}

Route = tuple[str, str, str]  # (function folder, HTTP method, resource path)


def _resolver_routes(name: str, source: str) -> set[Route]:
    """Routes of a Powertools resolver, from its decorators (``<param>`` written as ``{param}``)."""
    routes: set[Route] = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)):
                continue
            if not (isinstance(decorator.func.value, ast.Name) and decorator.func.value.id == "app"):
                continue
            verb = decorator.func.attr
            if verb not in _METHODS and verb != "route":
                continue
            rule = decorator.args[0]
            assert isinstance(rule, ast.Constant), f"{name}: a route rule that is not a literal"
            path = re.sub(r"<(\w+)>", r"{\1}", str(rule.value))
            if verb == "route":
                method = decorator.args[1] if len(decorator.args) > 1 else None
                assert isinstance(method, ast.Constant), f"{name}: a route without a literal method"
                routes.add((name, str(method.value).upper(), path))
            else:
                routes.add((name, verb.upper(), path))
    return routes


def served_routes() -> set[Route]:
    """What each function's handler answers."""
    routes: set[Route] = set()
    for handler in sorted(FUNCTIONS.glob("*/handler.py")):
        name, source = handler.parent.name, handler.read_text()
        if "APIGatewayRestResolver" in source:
            routes |= _resolver_routes(name, source)
        if re.search(r"^ROUTES = ", source, re.M):
            spec = importlib.util.spec_from_file_location(f"served_{name}", handler)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            routes |= {(name, method, path) for method, path in module.ROUTES}
    return routes


def _function_sources(outdir: Path) -> dict[str, str]:
    """Code asset folder name (``asset.<hash>``) -> the function folder whose handler it holds."""
    handlers = {(d / "handler.py").read_bytes(): d.name for d in FUNCTIONS.iterdir() if (d / "handler.py").is_file()}
    sources: dict[str, str] = {}
    for asset in outdir.rglob("asset.*"):
        handler = asset / "handler.py"
        if asset.is_dir() and handler.is_file() and handler.read_bytes() in handlers:
            sources[asset.name] = handlers[handler.read_bytes()]
    return sources


def wired_routes(template: Mapping[str, Any], outdir: Path) -> dict[Route, dict[str, Any]]:
    """Each API method of the template: (function folder, method, path) -> the method's properties."""
    resources = template["Resources"]
    sources = _function_sources(outdir)

    def path_of(reference: Mapping[str, Any]) -> str:
        if "Ref" not in reference:  # the API's root resource (Fn::GetAtt RootResourceId)
            return ""
        resource = resources[reference["Ref"]]["Properties"]
        return f"{path_of(resource['ParentId'])}/{resource['PathPart']}"

    wired: dict[Route, dict[str, Any]] = {}
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] != "AWS::ApiGateway::Method" or properties["HttpMethod"] == "OPTIONS":
            continue
        uri = json.dumps(properties["Integration"]["Uri"])
        targets = [
            fn
            for fn, r in resources.items()
            if r["Type"] == "AWS::Lambda::Function" and f'"{fn}", "Arn"' in uri.replace("[", "").replace("]", "")
        ]
        assert len(targets) == 1, f"{logical_id}: integrates {targets or 'no Lambda function'}"
        asset = Path(resources[targets[0]]["Metadata"]["aws:asset:path"]).name
        assert asset in sources, f"{logical_id}: the function's code is no functions/<name> folder"
        route = (sources[asset], properties["HttpMethod"], path_of(properties["ResourceId"]) or "/")
        assert route not in wired, f"{route} is wired twice"
        wired[route] = properties
    return wired


@pytest.mark.parametrize("env", ["dev", "keyed"])
def test_every_served_route_is_wired_and_every_wired_route_is_served(synthesized: Synthesized, env: str) -> None:
    # GIVEN the synthesized API and the handlers' own routes
    wired = wired_routes(synthesized.template_json(env, "platform"), synthesized.outdir)
    served = served_routes()
    # THEN each route a handler serves is a method of the API, integrated with that handler's function
    assert served - set(wired) == set(), "served by a handler but not wired in the API"
    # AND each method of the API is served by the function it integrates
    assert set(wired) - served == set(), "wired in the API but no handler serves it"
    # AND the catalog's GET /models/{model} is among them (the one describe route)
    assert ("api", "GET", "/models/{model}") in wired
    assert [r for r in wired if r[1:] == ("GET", "/models/{model}")] == [("api", "GET", "/models/{model}")]


@pytest.mark.parametrize(("env", "auth", "key"), [("dev", "AWS_IAM", False), ("keyed", "NONE", True)])
def test_every_route_is_authenticated_alike(synthesized: Synthesized, env: str, auth: str, key: bool) -> None:
    # GIVEN each wired route WHEN its method is read THEN all are signed (IAM), or all need the API key
    wired = wired_routes(synthesized.template_json(env, "platform"), synthesized.outdir)
    assert {(p["AuthorizationType"], bool(p.get("ApiKeyRequired"))) for p in wired.values()} == {(auth, key)}
