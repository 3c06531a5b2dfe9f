"""The review API fuzzed from its own OpenAPI description (schemathesis).

Why in-process ASGI: no port, no server thread, and every generated request
goes through the real middleware, auth and CSRF dependencies. Two
properties: with the token and CSRF header no operation answers 5xx, and
every state-changing call without the token, or without the CSRF header,
is refused before it can touch the queue.
"""

from __future__ import annotations

import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, given, settings as hyp_settings
from hypothesis.errors import Unsatisfiable

from bot.engage.planner import run_plan
from bot.engage.review.app import create_app
from bot.engage.review.auth import derive, load_or_create_token
from bot.report import render_report
from storage.db import connect
from test_queue_world import NOW, TEMPLATES, build_world, engagement_settings

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture(scope="module")
def review_app(tmp_path_factory):
    path = tmp_path_factory.mktemp("st") / "review.db"
    db = connect(path)
    build_world(db, users=6, posts_per_user=2, texts={"p0_0": "<script>alert(1)</script>", "p1_0": "\u202e反转\u202c 好"})
    s = engagement_settings(templates=TEMPLATES, max_post_age_days=3650)
    run_plan(db, s, NOW)
    assert db.execute("SELECT COUNT(*) FROM queue").fetchone()[0] > 0
    db.close()
    token = load_or_create_token(path)
    app = create_app(path, s, token, report=render_report)
    return {"app": app, "token": token, "csrf": derive(token, "csrf"), "path": path}


@pytest.fixture(scope="module")
def api_schema(review_app):
    return schemathesis.openapi.from_asgi("/api/openapi.json", review_app["app"])


FUZZ = hyp_settings(max_examples=25, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.filter_too_much])


def operations(api_schema) -> list:
    return [r.ok() for r in api_schema.get_all_operations()]


def for_every_case(api_schema, check) -> list[str]:
    """Run ``check(case)`` on generated cases of every operation, both data
    that fits the schema and data that does not; returns the labels covered.

    Why hypothesis directly and not ``schema.parametrize()``: schemathesis'
    pytest plugin reads a private pytest attribute that pytest 9 removed.
    """
    labels = []
    for op in operations(api_schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @FUZZ
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case):
                check(case)

            try:
                run()
            except Unsatisfiable:
                # An operation without parameters or body has no invalid input to make.
                assert mode is GenerationMode.NEGATIVE and not list(op.iter_parameters()) and not op.body, op.label
        labels.append(op.label)
    return labels


def test_the_schema_lists_every_api_operation(api_schema):
    ops = {(op.method.upper(), op.path) for op in operations(api_schema)}
    assert {("GET", "/api/items"), ("GET", "/api/items/{item_id}"), ("POST", "/api/items/approve"),
            ("POST", "/api/items/reject"), ("POST", "/api/items/{item_id}/edit"), ("GET", "/api/session"),
            ("GET", "/api/counts"), ("GET", "/report")} <= ops


def test_no_operation_answers_5xx_with_valid_auth(api_schema, review_app):
    headers = {"Authorization": f"Bearer {review_app['token']}", "X-CSRF-Token": review_app["csrf"]}

    def check(case):
        response = case.call(headers=headers)
        assert response.status_code < 500, (case.method, case.path, case.path_parameters, case.query, case.body,
                                            response.status_code, response.text[:500])
        if case.path == "/api/items/approve" and response.status_code == 403:
            assert "users add" in response.text            # the token never approves: it says what is needed
            return
        assert response.status_code not in (401, 403), response.text[:200]

    assert len(for_every_case(api_schema, check)) >= 8


def audit_rows(path) -> int:
    db = connect(path)
    try:
        return db.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]
    finally:
        db.close()


def test_state_changing_calls_need_the_token_and_the_csrf_header(api_schema, review_app):
    token, csrf = review_app["token"], review_app["csrf"]
    changing = []

    def check(case):
        if case.method.upper() not in STATE_CHANGING:
            response = case.call()                         # reads still need the token
            assert response.status_code == 401, (case.method, case.path, response.status_code)
            return
        changing.append(case.path)
        before = audit_rows(review_app["path"])
        for headers, expected in (({"X-CSRF-Token": csrf}, 401),
                                  ({"Authorization": "Bearer not-the-token", "X-CSRF-Token": csrf}, 401),
                                  ({"Authorization": f"Bearer {token}"}, 403),
                                  ({"Authorization": f"Bearer {token}", "X-CSRF-Token": "0" * 64}, 403)):
            response = case.call(headers=headers)
            assert response.status_code == expected, (case.path, headers.keys(), case.body, response.status_code,
                                                      response.text[:200])
        assert audit_rows(review_app["path"]) == before    # nothing changed

    for_every_case(api_schema, check)
    assert {"/api/items/approve", "/api/items/reject", "/api/items/{item_id}/edit"} <= set(changing)
