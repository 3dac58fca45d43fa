"""OpenAPI import: the Petstore 3.0 spec and a 3.1 spec published in one step each (CLI and
Admin API), every operation routable with auth and validation attached, re-import an empty
plan, a changed spec updating only what changed, and mock answers from the examples."""
import json
import os
import subprocess
from pathlib import Path

from conftest import PORTICO_BIN, request
from test_admin_api import READ, WRITE, admin_config, call

SPECS = Path(__file__).parent / "specs"
PET_KEY = "pet-key-0123456789"


def cli(p, *args):
    r = subprocess.run([PORTICO_BIN, *args, "--admin", f"http://127.0.0.1:{p.admin_port}"],
                       capture_output=True, text=True, timeout=30,
                       env={**os.environ, "PORTICO_ADMIN_TOKEN": WRITE})
    return r.returncode, r.stdout, r.stderr


def test_petstore_import_routes_auth_validation_and_reimport(portico, upstreams, tmp_path):
    u = upstreams()
    p = portico(config=admin_config(tmp_path, u.address))
    spec = SPECS / "petstore-3.0.yaml"
    code, out, err = cli(p, "import", "openapi", str(spec), "--api", "petstore",
                         "--upstream", "seed", "--dry-run")
    assert code == 0, err
    assert sorted(out.splitlines()) == ["+ apis/petstore", "+ routes/createPets",
                                        "+ routes/listPets", "+ routes/showPetById"]
    assert request(p.port, "GET", "/pets")[0] == 404  # a dry run changes nothing
    code, out, err = cli(p, "import", "openapi", str(spec), "--api", "petstore",
                         "--upstream", "seed")
    assert code == 0, err
    assert call(p, "POST", "/consumers", {"name": "pet-owner",
                                          "credentials": {"key-auth": [{"key": PET_KEY}]}})[0] == 201
    key = {"X-API-Key": PET_KEY}

    # Every operation is routable, behind the spec's API key; the rewrite adds servers[0]'s
    # path (/v1).
    assert request(p.port, "GET", "/pets")[0] == 401
    assert request(p.port, "GET", "/pets", headers=key)[0] == 200
    assert u.requests[-1].target == "/v1/pets"
    assert request(p.port, "GET", "/pets/7", headers=key)[0] == 200
    assert u.requests[-1].target == "/v1/pets/7"
    assert request(p.port, "DELETE", "/pets/7", headers=key)[0] == 405  # not in the spec
    # createPets validates its body against the (inlined, nullable-aware) Pet schema.
    pet = {"Content-Type": "application/json", **key}
    assert request(p.port, "POST", "/pets", headers=pet,
                   body=json.dumps({"id": 1, "name": "rex", "tag": None}))[0] == 200
    s, h, body = request(p.port, "POST", "/pets", headers=pet, body=json.dumps({"id": "x"}))
    assert s == 400 and h["content-type"] == "application/problem+json"
    assert "/id" in body.decode() or "name" in body.decode()
    routes = {r["name"]: r for r in call(p, "GET", "/routes?label=openapi=petstore",
                                         token=READ)[2]["data"]}
    assert routes["createPets"]["match"] == {"path": "/pets", "methods": ["POST"]}
    assert routes["showPetById"]["match"]["path"] == "/pets/{petId}"
    # The spec is kept and served.
    s, _, kept = call(p, "GET", "/apis/petstore/openapi", token=READ)
    assert s == 200 and kept["info"]["title"] == "Swagger Petstore"

    # The same spec again: nothing to do.
    code, out, _ = cli(p, "import", "openapi", str(spec), "--api", "petstore",
                       "--upstream", "seed")
    assert code == 0 and out.splitlines() == [out.splitlines()[-1]]  # only "revision N"
    # A changed spec: one operation gone, one path changed — only those change.
    changed = spec.read_text().replace("/pets/{petId}:", "/pet/{petId}:")
    changed = changed.replace("    post:\n      summary: Create a pet", "    x-removed:\n      summary: Create a pet")
    (tmp_path / "changed.yaml").write_text(changed)
    code, out, err = cli(p, "import", "openapi", str(tmp_path / "changed.yaml"), "--api",
                         "petstore", "--upstream", "seed")
    assert code == 0, err
    lines = out.splitlines()[:-1]
    assert sorted(lines) == ["- routes/createPets", "~ apis/petstore", "~ routes/showPetById"]
    assert request(p.port, "GET", "/pet/7", headers=key)[0] == 200
    assert request(p.port, "GET", "/pets/7", headers=key)[0] == 404
    assert request(p.port, "GET", "/seed")[0] == 200  # what the import did not make is untouched


def test_openapi_31_upstream_from_servers_and_mock(portico, upstreams, tmp_path):
    u = upstreams()
    p = portico(config=admin_config(tmp_path, u.address))
    spec = (SPECS / "orders-3.1.json").read_text()
    # Without --upstream: one made from servers[0] (orders.internal:8080), rewrites under /api.
    s, _, plan = call(p, "POST", "/apis/orders/openapi?base_path=/orders/v2&dry_run=true", spec)
    assert s == 200 and {"kind": "upstreams", "name": "orders"} in plan["create"]
    assert plan["errors"] == [] or "orders.internal" in json.dumps(plan["errors"])

    # Designed before the service exists: mock answers, after auth.
    s, _, out = call(p, "POST", "/apis/orders/openapi?base_path=/orders/v2&mock=true", spec)
    assert s == 200, out
    assert {c["name"] for c in out["create"]} == {"orders", "createOrder", "getOrder",
                                                  "orders-delete-orders-id"}
    s, h, body = request(p.port, "GET", "/orders/v2/orders/o-1")  # security: [] -> public
    assert s == 200 and json.loads(body) == {"id": "o-1", "status": "shipped"}
    assert h["content-type"] == "application/json"
    assert request(p.port, "POST", "/orders/v2/orders", body=b'{"items": ["a"]}',
                   headers={"Content-Type": "application/json"})[0] == 401  # bearer jwt
    assert request(p.port, "DELETE", "/orders/v2/orders/o-1")[0] == 401
    api = call(p, "GET", "/apis/orders", token=READ)[2]
    assert api["version"] == "2.0.0" and api["docs"] == "https://docs.example.com/orders"
    create = call(p, "GET", "/routes/createOrder", token=READ)[2]
    names = [pl["name"] for pl in create["plugins"]]
    assert names == ["jwt", "request-size-limit", "request-validation", "static-response"]
    assert create["plugins"][3]["config"]["status"] == 201


def test_import_refusals(portico, upstreams, tmp_path):
    u = upstreams()
    p = portico(config=admin_config(tmp_path, u.address))
    s, _, out = call(p, "POST", "/apis/x/openapi?upstream=seed", {"openapi": "2.0", "paths": {}})
    assert s == 400 and "3.0.x or 3.1.x" in out["errors"][0]["message"]
    # A route name taken by something the import did not make is never overwritten.
    spec = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"},
            "paths": {"/seed": {"get": {"operationId": "seed", "responses": {"200": {}}}}}}
    s, _, out = call(p, "POST", "/apis/x/openapi?upstream=seed", spec)
    assert s == 409 and "not imported" in out["error"]
    spec["paths"]["/seed"]["get"]["operationId"] = "other"
    spec["paths"]["/seed"]["get"]["security"] = [{"cookie": []}]
    spec["components"] = {"securitySchemes": {"cookie": {"type": "apiKey", "in": "cookie",
                                                          "name": "sid"}}}
    s, _, out = call(p, "POST", "/apis/x/openapi?upstream=seed", spec)
    assert s == 400 and "not supported" in out["errors"][0]["message"]
