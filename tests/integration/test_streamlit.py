"""dynorm.contrib.streamlit: the connection, run headless by streamlit.testing.v1.AppTest."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import dynorm
from dynorm import Model
from dynorm._config import get_settings
from tests.reliability.helpers import Faults


class BoardNote(Model):
    board: str
    id: str
    text: str = ""

    class Meta:
        pk = "NOTEBOARD#{board}"
        sk = "NOTE#{id}"


def app() -> None:  # the script AppTest runs (its source, as a fresh module)
    import streamlit as st

    from dynorm.contrib.streamlit import DynormConnection
    from tests.integration.test_streamlit import BoardNote

    conn = st.connection("dynorm", type=DynormConnection, ttl=600)
    if st.button("add"):
        count = len(conn.query(BoardNote.objects.filter(board="b")))
        conn.save(BoardNote(board="b", id=f"n{count}"))
    notes = conn.query(BoardNote.objects.filter(board="b"))
    st.write(f"{len(notes)} notes")
    st.write(f"first: {conn.get(BoardNote, board='b', id='n0').text}")


@pytest.fixture
def app_test(dynorm_table: str) -> Iterator[AppTest]:
    at = AppTest.from_function(app, default_timeout=30)
    # No endpoint_url: the Table then shares dynorm's configured client (the fixture's).
    at.secrets["connections"] = {"dynorm": {"table_name": dynorm_table}}
    main = sys.modules["__main__"]
    yield at
    st.cache_resource.clear()  # st.connection keeps connections there
    sys.modules["__main__"] = main  # AppTest leaves its script there, globals and all


def texts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def test_streamlit_connection_caches_reads_and_writes_through_it_invalidate(
    app_test: AppTest,
) -> None:
    BoardNote(board="b", id="n0", text="hello").save()
    faults = Faults()
    queries = faults.count("Query")
    gets = faults.count("GetItem")
    try:
        at = app_test.run()
        assert not at.exception, at.exception
        assert texts(at) == ["1 notes", "first: hello"]
        at.run()  # a rerun: both reads come from the cache
        assert texts(at) == ["1 notes", "first: hello"]
        BoardNote(board="b", id="n9").save()  # written outside the connection: cached for ttl
        at.run()
        assert texts(at) == ["1 notes", "first: hello"]
        assert (len(queries), len(gets)) == (1, 1)
        at.button[0].click().run()  # a write through the connection clears the cache
        assert not at.exception, at.exception
        assert texts(at) == ["3 notes", "first: hello"]
        assert (len(queries), len(gets)) == (2, 2)
    finally:
        faults.clear()


def test_streamlit_connection_reads_and_writes_the_table_of_its_secrets(
    app_test: AppTest, second_table: dynorm.Table
) -> None:
    with dynorm.using(second_table):
        BoardNote(board="b", id="n0", text="other table").save()
    BoardNote(board="b", id="n0", text="own table").save()
    BoardNote(board="b", id="n1", text="own table").save()
    endpoint = get_settings().endpoint_url  # a Table with a client of its own
    app_test.secrets["connections"] = {
        "dynorm": {"table_name": second_table.name, "endpoint_url": endpoint}
    }
    at = app_test.run()
    assert not at.exception, at.exception
    assert texts(at) == ["1 notes", "first: other table"]
    at.button[0].click().run()
    assert texts(at) == ["2 notes", "first: other table"]
    assert BoardNote.objects.filter(board="b").count() == 2  # the default table is unchanged
    assert BoardNote.objects.using(second_table).get(board="b", id="n1").text == ""
