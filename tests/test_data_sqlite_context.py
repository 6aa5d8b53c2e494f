import sqlite3

import pytest

from sqlft.data.sqlite_context import Rejected, check, check_gold, materialise, scratch_copy, statement_kind

BEDS = "CREATE TABLE Beds (State VARCHAR(50), Beds INT); INSERT INTO Beds VALUES ('CA', 100), ('TX', 85);"


def test_context_and_gold_come_out_as_sqlite_that_runs():
    checked = check(BEDS, "SELECT State FROM Beds WHERE Beds > 90;")
    assert checked.context.split(";\n") == [
        "CREATE TABLE Beds (State TEXT(50), Beds INTEGER)",
        "INSERT INTO Beds VALUES ('CA', 100), ('TX', 85);",
    ]
    assert checked.sql == "SELECT State FROM Beds WHERE Beds > 90"
    assert (checked.kind, checked.rows) == ("SELECT", 1)
    conn = sqlite3.connect(":memory:")
    conn.executescript(checked.context)
    assert conn.execute(checked.sql).fetchall() == [("CA",)]


@pytest.mark.parametrize(
    ("context", "sql", "expected"),
    [
        (  # MySQL
            "CREATE TABLE `t` (`id` INT AUTO_INCREMENT PRIMARY KEY, `n` VARCHAR(9)); "
            "INSERT INTO `t` (`n`) VALUES ('a');",
            "SELECT `n` FROM `t`",
            [("a",)],
        ),
        (  # T-SQL: N'' strings and TOP
            "CREATE TABLE t (id INT IDENTITY(1,1), n NVARCHAR(9)); INSERT INTO t (n) VALUES (N'a'), (N'b');",
            "SELECT TOP 1 n FROM t ORDER BY n DESC",
            [("b",)],
        ),
        (  # Postgres: ILIKE
            "CREATE TABLE t (id SERIAL PRIMARY KEY, n TEXT); INSERT INTO t (n) VALUES ('Abba'), ('Cher');",
            "SELECT n FROM t WHERE n ILIKE 'a%'",
            [("Abba",)],
        ),
    ],
)
def test_dialects_are_transpiled(context, sql, expected):
    checked = check(context, sql)
    conn = sqlite3.connect(":memory:")
    conn.executescript(checked.context)
    assert conn.execute(checked.sql).fetchall() == expected


@pytest.mark.parametrize(
    ("context", "sql", "reason"),
    [
        ("CREATE TABLE t (a INT", "SELECT a FROM t", "context does not parse"),
        ("CREATE TABLE t (a INT); INSERT INTO u VALUES (1);", "SELECT a FROM t", "context fails to execute"),
        (BEDS, "SELECT nope FROM Beds", "gold fails to execute (OperationalError)"),
        (BEDS, "SELECT State FROM Beds WHERE (", "gold does not parse"),
        (BEDS, "DELETE FROM Beds", "gold is DELETE, not kept"),
        (BEDS, "SELECT 1; SELECT 2", "gold is not one statement"),
        ("  ;  ", "SELECT 1", "empty context"),
    ],
)
def test_rejections_name_their_reason(context, sql, reason):
    with pytest.raises(Rejected) as info:
        check(context, sql)
    assert info.value.reason.startswith(reason)
    assert "\x1b[" not in info.value.detail  # no terminal colour codes in reports


def test_a_runaway_gold_is_stopped_by_the_time_limit():
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"
    with pytest.raises(Rejected) as info:
        check(BEDS, endless, timeout_s=0.2)
    assert info.value.reason == "gold fails to execute (timeout)"


def test_a_context_cannot_attach_files(tmp_path):
    target = tmp_path / "x.db"
    with pytest.raises(Rejected):
        materialise(f"CREATE TABLE t (a INT); VACUUM INTO '{target}';", dialects=("sqlite",))
    assert not target.exists()


def test_write_statements_when_asked():
    checked = check(BEDS, "UPDATE Beds SET Beds = 0 WHERE State = 'CA'", kinds=("SELECT", "UPDATE"))
    assert checked.kind == "UPDATE"


def test_write_gold_on_a_scratch_copy_leaves_the_source(tmp_path):
    path = tmp_path / "db.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript("CREATE TABLE t (a INT); INSERT INTO t VALUES (1);")
    conn.close()
    source = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    copy = scratch_copy(source)
    assert check_gold(copy, "DELETE FROM t", kinds=("DELETE",))[1] == "DELETE"
    assert source.execute("SELECT COUNT(*) FROM t").fetchone() == (1,)


def test_statement_kind():
    import sqlglot

    assert statement_kind(sqlglot.parse_one("WITH a AS (SELECT 1) SELECT * FROM a")) == "SELECT"
    assert statement_kind(sqlglot.parse_one("SELECT 1 UNION SELECT 2")) == "SELECT"
    assert statement_kind(sqlglot.parse_one("INSERT INTO t VALUES (1)")) == "INSERT"


SALES = "CREATE TABLE s (d DATE); INSERT INTO s VALUES ('2024-03-01');"


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT YEAR(d), MONTH(d), DAY(d) FROM s", (2024, 3, 1)),  # MySQL
        ("SELECT EXTRACT(YEAR FROM d), DATEPART(month, d) FROM s", (2024, 3)),  # Postgres, T-SQL
        (
            "SELECT DATE_ADD(d, INTERVAL 3 MONTH), DATE_SUB(d, INTERVAL 1 YEAR) FROM s",
            ("2024-06-01", "2023-03-01"),
        ),
        ("SELECT d + INTERVAL '2 weeks', d - INTERVAL '1 day' FROM s", ("2024-03-15", "2024-02-29")),
        ("SELECT DATEADD(week, -1, d) FROM s", ("2024-02-23",)),  # SQLite has no WEEK: 7 days
        ("SELECT COUNT(*) FROM s WHERE d <= NOW() AND d <= CURDATE()", (1,)),
    ],
)
def test_dates_become_sqlite_idioms_with_the_same_answer(sql, expected):
    checked = check(SALES, sql)
    conn = sqlite3.connect(":memory:")
    conn.executescript(checked.context)
    assert conn.execute(checked.sql).fetchone() == expected


def test_an_unknown_date_unit_is_left_to_fail():
    with pytest.raises(Rejected, match="gold fails to execute"):
        check(SALES, "SELECT DATE_SUB(d, INTERVAL 1 QUARTER) FROM s")


def test_gold_that_already_runs_keeps_its_spelling():
    context = "CREATE TABLE t (a INT, b TEXT); INSERT INTO t VALUES (1, 'x'), (2, 'y');"
    sql = "SELECT T1.a FROM t AS T1 WHERE T1.a NOT IN (SELECT a FROM t WHERE b = 'y');"
    assert check(context, sql).sql == sql.rstrip(";")
    # a MySQL-only spelling still goes through sqlglot
    assert (
        "YEAR"
        not in check(
            "CREATE TABLE d (x DATE); INSERT INTO d VALUES ('2020-05-01');", "SELECT YEAR(x) FROM d"
        ).sql.upper()
    )
