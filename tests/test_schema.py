import json
import sqlite3

import pytest
import sqlglot
from sqlglot import exp

from sqlft.data.records import DataError, Example
from sqlft.schema import Schema, SchemaStore, quote
from sqlft.sqlexec import connect_memory

SHOP_DDL = """
CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "home town" TEXT);
CREATE TABLE "order" (
  order_id INTEGER,
  line INTEGER,
  customer_id INTEGER REFERENCES customer(id),
  note TEXT,
  PRIMARY KEY (order_id, line)
);
CREATE TABLE refund (
  id INTEGER,
  order_id INTEGER,
  line INTEGER,
  CONSTRAINT fk_order FOREIGN KEY (order_id, line) REFERENCES "order" (order_id, line)
);
INSERT INTO customer VALUES (1, 'Ann', 'Paris'), (2, 'Bob', 'Paris'), (3, 'Cy', NULL), (4, 'Di', 'Oslo');
INSERT INTO "order" VALUES (10, 1, 1, 'a very long note that goes on and on and on'), (11, 1, 2, NULL);
"""


def tables_used(sql: str) -> set[str]:
    tree = sqlglot.parse_one(sql, read="sqlite")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    return {t.name.lower() for t in tree.find_all(exp.Table)} - ctes


def ddl_tables(text: str) -> set[str]:
    return {s.this.this.name.lower() for s in sqlglot.parse(text, read="sqlite") if isinstance(s, exp.Create)}


def compact_tables(text: str) -> set[str]:
    return {line.split("(", 1)[0].strip('"').lower() for line in text.splitlines()}


def test_every_spider_dev_gold_table_is_in_both_renders(spider_dir):
    store = SchemaStore(spider_dir / "database", spider_dir / "tables.json")
    dev = json.loads((spider_dir / "dev.json").read_text())
    renders = {}
    for record in dev:
        if record["db_id"] not in renders:
            schema = store.for_db(record["db_id"])
            renders[record["db_id"]] = (
                ddl_tables(schema.render("ddl")),
                compact_tables(schema.render("compact")),
            )
        in_ddl, in_compact = renders[record["db_id"]]
        used = tables_used(record["query"])
        assert used, record["query"]
        assert used <= in_ddl, (record["db_id"], record["query"])
        assert used <= in_compact, (record["db_id"], record["query"])
    assert len(renders) == 20 and "wta_1" in renders


def test_rendered_spider_ddl_rebuilds_the_same_schema(spider_dir):
    """The DDL style is valid SQLite: executing it gives back the same tables, columns and keys."""
    store = SchemaStore(spider_dir / "database", spider_dir / "tables.json")
    for db_id in ("concert_singer", "wta_1", "cre_Doc_Template_Mgt", "dog_kennels"):
        schema = store.for_db(db_id)
        conn = sqlite3.connect(":memory:")
        conn.executescript(schema.render("ddl"))
        again = Schema.from_sqlite(conn)
        assert again.table_names == schema.table_names
        for before, after in zip(schema.tables, again.tables, strict=True):
            assert [c.name for c in after.columns] == [c.name for c in before.columns]
            assert after.primary_key == before.primary_key
            assert after.foreign_keys == before.foreign_keys


def test_from_sqlite_reads_keys_types_and_order(tmp_path):
    path = tmp_path / "shop.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(SHOP_DDL + "CREATE TABLE tag (customer_id INTEGER REFERENCES customer);")
    conn.close()
    schema = Schema.from_sqlite(path)
    assert schema.db_id == "shop"
    assert schema.table_names == ["customer", "order", "refund", "tag"]
    customer, order, refund, tag = schema.tables
    assert [(c.name, c.type) for c in customer.columns] == [
        ("id", "INTEGER"),
        ("name", "TEXT"),
        ("home town", "TEXT"),
    ]
    assert order.primary_key == ["order_id", "line"]
    assert order.foreign_keys[0].ref_table == "customer"
    assert order.foreign_keys[0].columns == ("customer_id",)
    assert refund.foreign_keys[0].columns == ("order_id", "line")
    assert refund.foreign_keys[0].ref_columns == ("order_id", "line")
    assert tag.foreign_keys[0].ref_columns == ("id",)  # REFERENCES customer means its primary key


def test_from_sqlite_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match="nope.sqlite"):
        Schema.from_sqlite(tmp_path / "nope.sqlite")


def test_from_ddl_matches_from_sqlite():
    by_ddl = Schema.from_ddl(SHOP_DDL, "sqlite")
    conn = sqlite3.connect(":memory:")
    conn.executescript(SHOP_DDL)
    by_db = Schema.from_sqlite(conn)
    assert by_ddl.table_names == by_db.table_names
    for a, b in zip(by_ddl.tables, by_db.tables, strict=True):
        assert [c.name for c in a.columns] == [c.name for c in b.columns]
        assert a.primary_key == b.primary_key
        assert a.foreign_keys == b.foreign_keys


def test_from_ddl_reads_other_dialects_and_rejects_garbage():
    schema = Schema.from_ddl("CREATE TABLE `t` (`id` INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(5));", "mysql")
    assert schema.table_names == ["t"]
    assert schema.tables[0].primary_key == ["id"]
    assert [c.name for c in schema.tables[0].columns] == ["id", "v"]
    with pytest.raises(DataError, match="dialect"):
        Schema.from_ddl("CREATE TABLE t (a INT", "sqlite")


def test_hardened_connection_falls_back_to_stored_ddl():
    conn = connect_memory(SHOP_DDL)  # refuses PRAGMA
    schema = Schema.from_sqlite(conn, sample_values=1)
    assert schema.table_names == ["customer", "order", "refund"]
    assert schema.tables[1].primary_key == ["order_id", "line"]
    assert schema.tables[0].column("HOME TOWN").samples == ["Paris"]


def test_samples_are_frequent_distinct_non_null_and_truncated():
    conn = sqlite3.connect(":memory:")
    conn.executescript(SHOP_DDL)
    schema = Schema.from_sqlite(conn, sample_values=2)
    customer = schema.table("customer")
    assert customer.column("home town").samples == ["Paris", "Oslo"]  # Paris twice, NULL never
    assert customer.column("id").samples == [1, 2]
    note = schema.table("order").column("note")
    assert note.samples == ["a very long note that goes on and on and on"]
    ddl, compact = schema.render("ddl"), schema.render("compact")
    assert "\"home town\" TEXT, -- e.g. 'Paris', 'Oslo'" in ddl
    assert "'a very long note that goes on ...'" in ddl
    assert "\"home town\" TEXT [e.g. 'Paris', 'Oslo']" in compact
    assert Schema.from_sqlite(conn, sample_values=2).render("ddl") == ddl  # deterministic


def test_compact_format():
    schema = Schema.from_ddl(SHOP_DDL, "sqlite")
    assert schema.render("compact").splitlines() == [
        'customer(id* INTEGER, name TEXT, "home town" TEXT)',
        '"order"(order_id* INTEGER, line* INTEGER, customer_id INTEGER -> customer.id, note TEXT)',
        'refund(id INTEGER, order_id INTEGER -> "order".order_id, line INTEGER -> "order".line)',
    ]
    with pytest.raises(ValueError, match="style"):
        schema.render("yaml")


def test_ddl_format_is_valid_sql_with_keys():
    text = Schema.from_ddl(SHOP_DDL, "sqlite").render("ddl")
    assert "PRIMARY KEY (order_id, line)" in text
    assert 'FOREIGN KEY (order_id, line) REFERENCES "order" (order_id, line)' in text
    sqlite3.connect(":memory:").executescript(text)


def test_quote_only_what_needs_it():
    assert quote("Name") == "Name"
    assert quote("Year") == "Year"
    assert quote("order") == '"order"'
    assert quote("Home Town") == '"Home Town"'
    assert quote('a"b') == '"a""b"'


def test_store_uses_context_tables_json_then_sqlite(spider_dir, tmp_path):
    store = SchemaStore(spider_dir / "database", spider_dir / "tables.json", sample_values=1)
    inline = Example("q", "SELECT 1", "gretel", db_id="gretel-1", context=SHOP_DDL)
    schema = store.for_example(inline)
    assert schema.table_names == ["customer", "order", "refund"]
    assert schema.table("customer").column("name").samples == ["Ann"]
    assert store.for_example(inline) is schema  # cached
    wta = store.for_example(Example("q", "SELECT 1", "spider", db_id="wta_1"))
    assert wta.table_names == ["players", "matches", "rankings"]
    assert wta.tables[0].columns[0].type == "number"  # tables.json types

    db_dir = tmp_path / "dbs"
    (db_dir / "shop").mkdir(parents=True)
    with sqlite3.connect(db_dir / "shop" / "shop.sqlite") as conn:
        conn.executescript(SHOP_DDL)
    conn.close()
    only_files = SchemaStore(db_dir)
    assert only_files.for_db("shop").table_names == ["customer", "order", "refund"]


def test_store_unknown_db_id_says_where_it_looked(spider_dir):
    store = SchemaStore(spider_dir / "database", spider_dir / "tables.json")
    with pytest.raises(DataError) as info:
        store.for_example(Example("q", "SELECT 1", "spider", db_id="no_such_db"))
    message = str(info.value)
    assert "no_such_db" in message and "tables.json" in message and "database" in message
    assert "Fix" in message
    with pytest.raises(DataError, match="neither db_id nor context"):
        store.for_example(Example("q", "SELECT 1", "csv"))


def test_samples_keep_significant_spaces_but_stay_on_one_line():
    conn = sqlite3.connect(":memory:")
    conn.executescript("CREATE TABLE a (code TEXT); INSERT INTO a VALUES ('US'), ('US'), ('US '), ('x\ny');")
    schema = Schema.from_sqlite(conn, sample_values=3)
    assert schema.render("compact") == "a(code TEXT [e.g. 'US', 'US ', 'x y'])"


def test_mschema_format_names_types_keys_examples_and_links():
    conn = sqlite3.connect(":memory:")
    conn.executescript(SHOP_DDL)
    schema = Schema.from_sqlite(conn, sample_values=1)
    schema.db_id = "shop"
    lines = schema.render("mschema").splitlines()
    assert lines[:4] == ["[DB_ID] shop", "[Schema]", "# Table: customer", "["]
    assert "(id:INTEGER, Primary Key, Examples: [1])," in lines
    assert "(\"home town\":TEXT, Examples: ['Paris'])," in lines
    assert "(order_id:INTEGER, Primary Key, Examples: [10])," in lines  # the most frequent, then the least
    assert lines[lines.index("[Foreign keys]") :] == [
        "[Foreign keys]",
        '"order".customer_id=customer.id',
        'refund.order_id="order".order_id',
        'refund.line="order".line',
    ]
    assert lines.count("]") == 3  # one block per table
    assert Schema.from_ddl(SHOP_DDL, "sqlite").render("mschema").startswith("[Schema]")  # no db_id


@pytest.mark.parametrize("style", ["ddl", "compact", "mschema"])
def test_retrieved_values_come_first_beside_their_column_in_every_style(style):
    conn = sqlite3.connect(":memory:")
    conn.executescript(SHOP_DDL)
    schema = Schema.from_sqlite(conn, sample_values=1)
    long_value = "a retrieved value that is longer than thirty characters"
    values = {("customer", "home town"): ["Oslo", "Paris"], ("order", "note"): [long_value]}
    text = schema.render(style, values)
    home_town = next(line for line in text.splitlines() if "home town" in line)
    assert "'Oslo', 'Paris'" in home_town and home_town.count("'Paris'") == 1  # the sample is not repeated
    assert f"'{long_value}'" in text  # cut only past RETRIEVED_CHARS, not at the samples' 30
    assert schema.render(style) != text and "'Oslo'" not in schema.render(style)
