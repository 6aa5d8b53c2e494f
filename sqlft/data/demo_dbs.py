"""The demo databases, built by code: a shop, a school and a library with keys and seeded rows.

Everything here is deterministic: each database draws its rows from its own `random.Random`
seeded by a string, and only seed-stable calls (`randint`, `choice`, `sample`, `shuffle`) are used.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

SEED = "sqlft-demo"

_SQL_TYPES = {"number": "INTEGER", "real": "REAL", "text": "TEXT", "time": "TEXT"}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = "text"  # number | real | text | time; Spider's column_types call real "number"
    primary: bool = False
    references: str | None = None  # "table.column"


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class Database:
    db_id: str
    tables: tuple[Table, ...]


def _table(name: str, spec: str, rows: list[tuple[Any, ...]]) -> Table:
    """A table from a compact spec: `col[:kind][*][>table.col]` per column, `*` marks the primary key."""
    columns = []
    for item in spec.split():
        item, _, references = item.partition(">")
        primary = item.endswith("*")
        column, _, kind = item.rstrip("*").partition(":")
        columns.append(Column(column, kind or "text", primary, references or None))
    return Table(name, tuple(columns), tuple(rows))


def create_table_sql(table: Table) -> str:
    """SQLite DDL with the primary and foreign keys spelled out, one column a line."""
    lines = [
        f"  {c.name} {_SQL_TYPES[c.kind]}" + (" PRIMARY KEY" if c.primary else "") for c in table.columns
    ]
    for c in table.columns:
        if c.references:
            ref_table, ref_column = c.references.split(".")
            lines.append(f"  FOREIGN KEY ({c.name}) REFERENCES {ref_table}({ref_column})")
    return f"CREATE TABLE {table.name} (\n" + ",\n".join(lines) + "\n)"


def write_sqlite(db: Database, path: Path) -> None:
    """Write `db` to a new SQLite file at `path` (which must not exist)."""
    conn = sqlite3.connect(path)
    try:
        for table in db.tables:
            conn.execute(create_table_sql(table))
            marks = ", ".join("?" for _ in table.columns)
            conn.executemany(f"INSERT INTO {table.name} VALUES ({marks})", table.rows)
        conn.commit()
    finally:
        conn.close()


def memory_connection(db: Database) -> sqlite3.Connection:
    """The same database in memory, for generating and checking questions."""
    conn = sqlite3.connect(":memory:")
    for table in db.tables:
        conn.execute(create_table_sql(table))
        conn.executemany(
            f"INSERT INTO {table.name} VALUES ({', '.join('?' for _ in table.columns)})", table.rows
        )
    return conn


def _spider_name(name: str) -> str:
    return name.replace("_", " ").lower()


def tables_json_entry(db: Database) -> dict[str, Any]:
    """Spider's tables.json record: column 0 is `[-1, "*"]`, keys are global column indices."""
    columns: list[tuple[int, Column]] = [(-1, Column("*"))]
    index: dict[str, int] = {}
    for t, table in enumerate(db.tables):
        for column in table.columns:
            index[f"{table.name}.{column.name}"] = len(columns)
            columns.append((t, column))
    return {
        "column_names": [[t, _spider_name(c.name)] for t, c in columns],
        "column_names_original": [[t, c.name] for t, c in columns],
        "column_types": ["number" if c.kind == "real" else c.kind for _, c in columns],
        "db_id": db.db_id,
        "foreign_keys": [
            [index[f"{table.name}.{c.name}"], index[c.references]]
            for table in db.tables
            for c in table.columns
            if c.references
        ],
        "primary_keys": [
            index[f"{table.name}.{c.name}"] for table in db.tables for c in table.columns if c.primary
        ],
        "table_names": [_spider_name(t.name) for t in db.tables],
        "table_names_original": [t.name for t in db.tables],
    }


FIRST_NAMES = (
    "Alice Bruno Carmen Daniel Elena Felix Grace Hugo Irene Jonas Kara Liam Maya Nora Oscar Paula "
    "Quinn Rosa Samuel Tara Umar Vera Walter Ximena Yusuf Zoe Adrian Bianca Caleb Dana Emil Fiona "
    "Gavin Hana Ivan Julia Kenji Lena Marco Nadia"
).split()
LAST_NAMES = (
    "Abbott Baker Castillo Dubois Evans Fischer Garcia Hoffman Ito Jensen Kowalski Lopez Moreau "
    "Nakamura Okafor Petrov Quinlan Rossi Silva Tanaka Ueda Varga Weber Xu Young Zimmer"
).split()


def _people(rng: random.Random, count: int) -> list[str]:
    """`count` distinct full names."""
    names = [f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES]
    return rng.sample(names, count)


def _day(rng: random.Random, start: date, span_days: int) -> str:
    return (start + timedelta(days=rng.randint(0, span_days))).isoformat()


SHOP_CITIES = "Boston Chicago Denver Austin Seattle Miami Portland Phoenix Atlanta Dallas".split()
SHOP_PRODUCTS = {
    "Electronics": [
        "Wireless Mouse",
        "USB Keyboard",
        "Bluetooth Speaker",
        "Phone Charger",
        "Webcam",
        "Headphones",
    ],
    "Home": ["Coffee Mug", "Desk Lamp", "Throw Pillow", "Wall Clock", "Scented Candle", "Picture Frame"],
    "Sports": ["Yoga Mat", "Water Bottle", "Jump Rope", "Tennis Balls", "Running Cap", "Gym Bag"],
    "Books": [
        "Travel Guide",
        "Mystery Novel",
        "Poetry Collection",
        "Science Atlas",
        "Garden Handbook",
        "Cookbook",
    ],
    "Toys": ["Puzzle Box", "Toy Robot", "Kite", "Board Game", "Building Blocks", "Plush Bear"],
}
ORDER_STATUSES = ["delivered", "delivered", "delivered", "shipped", "shipped", "pending", "cancelled"]


def shop(rng: random.Random) -> Database:
    customers = [
        (i, name, rng.choice(SHOP_CITIES), rng.randint(2018, 2024))
        for i, name in enumerate(_people(rng, 48), 1)
    ]
    prices = rng.sample(range(499, 12999), 30)  # distinct, so ORDER BY price has no ties
    products = []
    for category, names in SHOP_PRODUCTS.items():
        for name in names:
            products.append((len(products) + 1, name, category, prices.pop() / 100, rng.randint(0, 200)))
    buyers = rng.sample([c[0] for c in customers], 34)
    sold = rng.sample([p[0] for p in products], 25)
    orders, items = [], []
    for order_id in range(1, 151):
        orders.append(
            (order_id, rng.choice(buyers), _day(rng, date(2023, 1, 1), 729), rng.choice(ORDER_STATUSES))
        )
        for product_id in rng.sample(sold, rng.randint(1, 3)):
            items.append((len(items) + 1, order_id, product_id, rng.randint(1, 5)))
    return Database(
        "shop",
        (
            _table("customers", "customer_id:number* name city signup_year:number", customers),
            _table("products", "product_id:number* name category price:real stock:number", products),
            _table(
                "orders",
                "order_id:number* customer_id:number>customers.customer_id order_date:time status",
                orders,
            ),
            _table(
                "order_items",
                "item_id:number* order_id:number>orders.order_id "
                "product_id:number>products.product_id quantity:number",
                items,
            ),
        ),
    )


SCHOOL_COURSES = {
    "Mathematics": ["Calculus", "Linear Algebra", "Statistics", "Number Theory"],
    "Physics": ["Mechanics", "Optics", "Thermodynamics", "Astrophysics"],
    "History": ["World History", "Ancient Rome", "Modern Europe", "Medieval Trade"],
    "Biology": ["Genetics", "Ecology", "Microbiology", "Botany"],
    "Literature": ["Poetry Workshop", "Shakespeare", "Modern Novels", "Creative Writing"],
    "Computer Science": ["Programming Basics", "Databases", "Algorithms", "Machine Learning"],
}


def school(rng: random.Random) -> Database:
    departments = list(SCHOOL_COURSES)
    people = _people(rng, 92)
    hired = rng.sample(range(2000, 2023), 12)  # distinct, so ORDER BY hire_year has no ties
    teachers = [(i, people[i - 1], departments[(i - 1) % 6], hired[i - 1]) for i in range(1, 13)]
    courses = []
    for department, titles in SCHOOL_COURSES.items():
        staff = [t[0] for t in teachers if t[2] == department]
        for title in titles:
            courses.append((len(courses) + 1, title, department, rng.choice([2, 3, 4]), rng.choice(staff)))
    students = [
        (i, name, rng.choice(departments), rng.randint(1, 4), rng.randint(18, 25))
        for i, name in enumerate(people[12:], 1)
    ]
    enrolled = rng.sample([s[0] for s in students], 62)
    pairs = rng.sample([(s, c[0]) for s in enrolled for c in courses], 260)
    enrollments = [(i, s, c, rng.randint(55, 100)) for i, (s, c) in enumerate(sorted(pairs), 1)]
    return Database(
        "school",
        (
            _table("teachers", "teacher_id:number* name department hire_year:number", teachers),
            _table(
                "courses",
                "course_id:number* title department credits:number teacher_id:number>teachers.teacher_id",
                courses,
            ),
            _table("students", "student_id:number* name major year:number age:number", students),
            _table(
                "enrollments",
                "enrollment_id:number* student_id:number>students.student_id "
                "course_id:number>courses.course_id grade:number",
                enrollments,
            ),
        ),
    )


TITLE_WORDS = (
    "Silent Hidden Golden Broken Distant Winter Crimson Secret Endless Quiet".split(),
    "River Garden Harbor Mountain Forest Letter Mirror Island Kingdom Station".split(),
)
LIBRARY_COUNTRIES = ["USA", "UK", "Canada", "France", "Japan", "India", "Brazil", "Nigeria"]
LIBRARY_GENRES = ["Mystery", "Fantasy", "Romance", "Science Fiction", "History", "Poetry"]
LIBRARY_CITIES = ["Springfield", "Riverton", "Lakeside", "Hillcrest", "Fairview", "Oakdale", "Maplewood"]


def library(rng: random.Random) -> Database:
    people = _people(rng, 70)
    authors = [
        (i, people[i - 1], rng.choice(LIBRARY_COUNTRIES), rng.randint(1920, 1990)) for i in range(1, 21)
    ]
    titles = rng.sample([f"The {a} {n}" for a in TITLE_WORDS[0] for n in TITLE_WORDS[1]], 60)
    pages = rng.sample(range(120, 700), 60)  # distinct, so ORDER BY pages has no ties
    books = [
        (i, title, rng.randint(1, 20), rng.choice(LIBRARY_GENRES), pages[i - 1], rng.randint(1950, 2023))
        for i, title in enumerate(titles, 1)
    ]
    members = [
        (i, name, rng.choice(LIBRARY_CITIES), rng.randint(2015, 2024))
        for i, name in enumerate(people[20:], 1)
    ]
    borrowed = rng.sample([b[0] for b in books], 42)
    borrowers = rng.sample([m[0] for m in members], 40)
    loans = [
        (i, rng.choice(borrowed), rng.choice(borrowers), _day(rng, date(2024, 1, 1), 365), rng.randint(3, 30))
        for i in range(1, 201)
    ]
    return Database(
        "library",
        (
            _table("authors", "author_id:number* name country birth_year:number", authors),
            _table(
                "books",
                "book_id:number* title author_id:number>authors.author_id "
                "genre pages:number published_year:number",
                books,
            ),
            _table("members", "member_id:number* name city join_year:number", members),
            _table(
                "loans",
                "loan_id:number* book_id:number>books.book_id "
                "member_id:number>members.member_id loan_date:time days:number",
                loans,
            ),
        ),
    )


def demo_databases() -> list[Database]:
    """The three demo databases, always the same rows."""
    return [build(random.Random(f"{SEED}-{build.__name__}")) for build in (shop, school, library)]


@dataclass(frozen=True)
class MiniDomain:
    """A two-table schema (a parent and its children) for gretel-style phase-1 examples.

    Every phase-1 example draws fresh rows, so each has its own small `sql_context`; the demo
    databases above are never used for phase 1.
    """

    domain: str
    description: str
    parent: str  # table: id, name, <attr>
    parent_noun: str
    parent_names: tuple[str, ...]
    attr: str
    attr_values: tuple[str, ...]
    child: str  # table: id, name, <category>, <measure>, <parent_noun>_id
    child_noun: str
    child_names: tuple[str, ...]
    category: str
    categories: tuple[str, ...]
    measure: str
    measure_range: tuple[int, int]

    @property
    def fk(self) -> str:
        return f"{self.parent_noun.replace(' ', '_')}_id"

    def tables(self, rng: random.Random) -> tuple[Table, Table]:
        """Fresh rows: 3 parents, 6 children with distinct names and distinct measures."""
        parents = [
            (i, name, rng.choice(self.attr_values))
            for i, name in enumerate(rng.sample(self.parent_names, 3), 1)
        ]
        measures = rng.sample(range(*self.measure_range), 6)
        children = [
            (i, name, rng.choice(self.categories), measures[i - 1], rng.randint(1, 3))
            for i, name in enumerate(rng.sample(self.child_names, 6), 1)
        ]
        parent = _table(self.parent, f"id:number* name {self.attr}", parents)
        child_spec = (
            f"id:number* name {self.category} {self.measure}:number {self.fk}:number>{self.parent}.id"
        )
        return parent, _table(self.child, child_spec, children)


def _words(text: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in text.split(","))


MINI_DOMAINS = (
    MiniDomain(
        "healthcare",
        "Hospitals, their doctors, medical specialties and salaries.",
        "hospitals",
        "hospital",
        _words("General Hospital, Mercy Clinic, St. Anne, Lakeview Medical, Hope Center, Northside"),
        "city",
        _words("Boston, Denver, Austin, Seattle"),
        "doctors",
        "doctor",
        _words(
            "Dr. Adams, Dr. Brown, Dr. Chen, Dr. Diaz, Dr. Evans, "
            "Dr. Fox, Dr. Gupta, Dr. Hall, Dr. Ivanova, Dr. Jones"
        ),
        "specialty",
        _words("cardiology, pediatrics, oncology, neurology"),
        "salary",
        (90000, 250000),
    ),
    MiniDomain(
        "sports",
        "Football teams, their players, positions and goals scored.",
        "teams",
        "team",
        _words("Red Lions, Blue Sharks, Green Eagles, Black Bears, White Wolves, Gold Falcons"),
        "city",
        _words("Madrid, Lisbon, Milan, Lyon"),
        "players",
        "player",
        _words("Alves, Becker, Costa, Dias, Eriksen, Ferreira, Gomez, Hansen, Ibrahim, Jovic"),
        "position",
        _words("forward, midfielder, defender"),
        "goals",
        (0, 40),
    ),
    MiniDomain(
        "energy",
        "Power plants by region, energy source and capacity in megawatts.",
        "regions",
        "region",
        _words("North Valley, Coastal Plain, High Desert, River Delta, Eastern Hills"),
        "country",
        _words("Spain, Chile, Kenya, Australia"),
        "power_plants",
        "power plant",
        _words(
            "Sunridge, Windmere, Clearwater, Stonepeak, Brightfield, "
            "Galeway, Deepflow, Redrock, Skyline, Hollow Creek"
        ),
        "source",
        _words("solar, wind, hydro, gas"),
        "capacity_mw",
        (20, 900),
    ),
    MiniDomain(
        "music",
        "Record labels, their artists, genres and monthly listeners.",
        "labels",
        "label",
        _words("Blue Note Records, Echo Sound, Harbor Music, Neon Tapes, Vinyl House"),
        "country",
        _words("USA, UK, Sweden, Korea"),
        "artists",
        "artist",
        _words(
            "Luna Ray, The Drifters, Mika Sol, Static Bloom, Northern Lights, "
            "Ivy Lane, Paper Kites, Zed Nova, Coral, Atlas"
        ),
        "genre",
        _words("pop, rock, jazz, electronic"),
        "monthly_listeners",
        (1000, 90000),
    ),
    MiniDomain(
        "hospitality",
        "Hotel chains, their hotels, market segments and room counts.",
        "hotel_chains",
        "chain",
        _words("Grand Stay, Blue Harbor Hotels, Sunset Inns, Alpine Lodges, Metro Suites"),
        "country",
        _words("Italy, Japan, Mexico, Greece"),
        "hotels",
        "hotel",
        _words(
            "Seaside Palace, City Central, Old Town Inn, Harbor View, Palm Court, "
            "Mountain Rest, Lakeside, Riverside, Skyline Tower, Garden House"
        ),
        "segment",
        _words("luxury, budget, boutique, resort"),
        "rooms",
        (20, 600),
    ),
)
