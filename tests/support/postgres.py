"""The tests' PostgreSQL: the server `make pg` / .ci/run start, one fresh schema per use.

The server's URL comes from ENGINE_TEST_POSTGRES_URL or the .pg/url file `make pg`
writes. Without one, a test needing PostgreSQL fails in CI (CI=true) and skips with a
one-line hint elsewhere.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
HINT = "no PostgreSQL for the tests: start one with `make pg` (or set ENGINE_TEST_POSTGRES_URL)"


def server_url() -> str:
    """The test server's admin URL; fails in CI and skips elsewhere when there is none."""
    url = os.environ.get("ENGINE_TEST_POSTGRES_URL", "")
    from_file = ROOT / ".pg" / "url"
    if not url and from_file.is_file():
        url = from_file.read_text().strip()
    problem = "" if url else HINT
    if url:
        try:
            with psycopg.connect(url, connect_timeout=5):
                pass
        except psycopg.Error as failed:
            cause = str(failed).strip().splitlines()[0]
            problem = f"the tests' PostgreSQL is unreachable ({cause}); {HINT}"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)
    return url


def in_schema(url: str, schema: str) -> str:
    """`url` with its search path set to `schema` (where the journal then lives)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


class Schemas:
    """Creates fresh schemas on the test server and drops them all at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._made: list[str] = []

    def new(self) -> str:
        """The URL of a journal in a new, empty schema."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(f"CREATE SCHEMA {name}")
        self._made.append(name)
        return in_schema(self.url, name)

    def drop_all(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection:
            for name in self._made:
                connection.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of the session's PostgreSQL server."""
    return server_url()


@pytest.fixture
def postgres_schemas(postgres_server: str) -> Iterator[Schemas]:
    """Fresh schemas for one test, dropped after it."""
    schemas = Schemas(postgres_server)
    yield schemas
    schemas.drop_all()


@pytest.fixture
def postgres_url(postgres_schemas: Schemas) -> str:
    """The URL of a journal in a fresh schema (nothing in it yet)."""
    return postgres_schemas.new()
