"""Question/SQL templates for the demo data, and the generators of its three splits.

A template is one SQL shape with several paraphrases of its question and slots filled with values
taken from the database. The last paraphrase of every template and about a quarter of every
slot's values are held out for `dev`, so dev measures generalisation to unseen wording and
values rather than recall. Every gold query is executed while generating; fillings whose result
is empty (or only NULL/0) are not used, so no dev match can come from an empty result.
"""

from __future__ import annotations

import itertools
import random
import re
import sqlite3
import string
from dataclasses import dataclass
from typing import Any

from sqlft.data.demo_dbs import MINI_DOMAINS, Database, MiniDomain, Table, memory_connection

TRAIN_PER_TEMPLATE = 12
DEV_PER_TEMPLATE = 3
PHASE1_SIZE = 300


@dataclass(frozen=True)
class Template:
    name: str
    db_id: str
    sql: str
    questions: tuple[str, ...]  # paraphrases; the last one is seen only in dev

    @property
    def slots(self) -> list[str]:
        """Slot names in first-use order; a trailing digit names a second value from the same pool."""
        found: list[str] = []
        for text in (self.sql, *self.questions):
            found += [f for _, f, _, _ in string.Formatter().parse(text) if f and f not in found]
        return found


def pool_of(slot: str) -> str:
    return re.sub(r"\d+$", "", slot)


# Where each slot's values come from: a query on the database or a fixed list.
POOLS: dict[str, dict[str, str | list[Any]]] = {
    "shop": {
        "city": "SELECT DISTINCT city FROM customers",
        "category": "SELECT DISTINCT category FROM products",
        "customer": "SELECT name FROM customers",
        "product": "SELECT name FROM products",
        "year": "SELECT DISTINCT signup_year FROM customers",
        "letter": "SELECT DISTINCT substr(name, 1, 1) FROM customers",
        "price": [20, 30, 40, 50, 60, 70, 80, 90, 100],
        "k": [2, 3, 4, 5, 6, 7],
        "n": [2, 3, 4, 5, 6],
        "qty": [2, 3, 4, 5],
    },
    "school": {
        "major": "SELECT DISTINCT major FROM students",
        "department": "SELECT DISTINCT department FROM teachers",
        "course": "SELECT title FROM courses",
        "student": "SELECT name FROM students",
        "teacher": "SELECT name FROM teachers",
        "letter": "SELECT DISTINCT substr(title, 1, 1) FROM courses",
        "year": [1, 2, 3, 4],
        "age": [19, 20, 21, 22, 23],
        "k": [2, 3, 4, 5, 6],
        "n": [8, 10, 12, 14, 16],
    },
    "library": {
        "genre": "SELECT DISTINCT genre FROM books",
        "country": "SELECT DISTINCT country FROM authors",
        "city": "SELECT DISTINCT city FROM members",
        "author": "SELECT name FROM authors",
        "member": "SELECT name FROM members",
        "word": ["River", "Garden", "Harbor", "Mountain", "Forest", "Letter", "Mirror", "Island", "Kingdom"],
        "pages": [250, 300, 350, 400, 450, 500, 550],
        "year": [1960, 1970, 1980, 1990, 2000, 2010],
        "days": [10, 15, 20, 25],
        "k": [2, 3, 4],
        "n": [2, 3, 4, 5],
    },
}


def _t(name: str, db_id: str, sql: str, *questions: str) -> Template:
    return Template(name, db_id, sql, questions)


TEMPLATES: tuple[Template, ...] = (
    # --- shop ---
    _t(
        "shop_customers_in_city",
        "shop",
        "SELECT name FROM customers WHERE city = '{city}'",
        "What are the names of the customers who live in {city}?",
        "List all customers from {city}.",
        "Show the names of customers based in {city}.",
        "Which customers are located in {city}?",
    ),
    _t(
        "shop_count_category",
        "shop",
        "SELECT COUNT(*) FROM products WHERE category = '{category}'",
        "How many products are in the {category} category?",
        "Count the products in category {category}.",
        "What is the number of {category} products?",
        "How many products does the shop sell in the {category} category?",
    ),
    _t(
        "shop_products_over_price",
        "shop",
        "SELECT name, price FROM products WHERE price > {price}",
        "List the names and prices of products that cost more than {price}.",
        "Which products are priced above {price}? Give their names and prices.",
        "Show the name and price of every product with a price greater than {price}.",
        "Find the name and price of the products more expensive than {price}.",
    ),
    _t(
        "shop_name_starts_with",
        "shop",
        "SELECT name FROM customers WHERE name LIKE '{letter}%'",
        "Which customers have a name starting with {letter}?",
        "List the customers whose names begin with the letter {letter}.",
        "Show all customer names that start with {letter}.",
        "Find the customers whose name starts with '{letter}'.",
    ),
    _t(
        "shop_customers_two_cities",
        "shop",
        "SELECT name, city FROM customers WHERE city IN ('{city1}', '{city2}')",
        "List the names and cities of customers who live in {city1} or {city2}.",
        "Which customers are from either {city1} or {city2}? Show name and city.",
        "Show the name and city of customers based in {city1} or {city2}.",
        "Give the names and cities of all customers located in {city1} or {city2}.",
    ),
    _t(
        "shop_avg_price_by_category",
        "shop",
        "SELECT category, AVG(price) FROM products GROUP BY category",
        "What is the average product price in each category?",
        "Show each category with the average price of its products.",
        "For every category, give the mean price of its products.",
        "List each product category together with its average price.",
    ),
    _t(
        "shop_total_quantity_of_product",
        "shop",
        "SELECT SUM(T1.quantity) FROM order_items AS T1 JOIN products AS T2 ON T1.product_id = T2.product_id "
        "WHERE T2.name = '{product}'",
        "What is the total quantity ordered of {product}?",
        "How many units of {product} have been ordered in total?",
        "Give the total ordered quantity for the product {product}.",
        "Find the sum of the quantities of all order items for {product}.",
    ),
    _t(
        "shop_order_dates_of_customer",
        "shop",
        "SELECT T1.order_date FROM orders AS T1 JOIN customers AS T2 ON T1.customer_id = T2.customer_id "
        "WHERE T2.name = '{customer}'",
        "Show the dates of all orders placed by {customer}.",
        "When did {customer} place orders? List the order dates.",
        "List the order dates for the customer named {customer}.",
        "What are the order dates of {customer}?",
    ),
    _t(
        "shop_items_bought_by_customer",
        "shop",
        "SELECT SUM(T3.quantity) FROM customers AS T1 JOIN orders AS T2 ON T1.customer_id = T2.customer_id "
        "JOIN order_items AS T3 ON T2.order_id = T3.order_id WHERE T1.name = '{customer}'",
        "How many items in total has {customer} bought?",
        "What is the total quantity of items ordered by {customer}?",
        "Count all units purchased by {customer} across their orders.",
        "Give the total number of items in all orders of {customer}.",
    ),
    _t(
        "shop_cities_with_many_customers",
        "shop",
        "SELECT city FROM customers GROUP BY city HAVING COUNT(*) > {n}",
        "Which cities have more than {n} customers?",
        "List the cities with over {n} customers.",
        "Show every city where the number of customers is greater than {n}.",
        "Find the cities that are home to more than {n} customers.",
    ),
    _t(
        "shop_most_expensive_products",
        "shop",
        "SELECT name FROM products ORDER BY price DESC LIMIT {k}",
        "What are the names of the {k} most expensive products?",
        "List the {k} priciest products.",
        "Show the top {k} products by price.",
        "Which {k} products have the highest prices?",
    ),
    _t(
        "shop_customers_without_orders",
        "shop",
        "SELECT name FROM customers WHERE city = '{city}' "
        "AND customer_id NOT IN (SELECT customer_id FROM orders)",
        "Which customers from {city} have never placed an order?",
        "List the customers in {city} without any orders.",
        "Show the names of {city} customers who have not ordered anything.",
        "Find the customers living in {city} that have no orders.",
    ),
    _t(
        "shop_category_above_average",
        "shop",
        "SELECT name FROM products WHERE category = '{category}' "
        "AND price > (SELECT AVG(price) FROM products)",
        "Which {category} products cost more than the average price of all products?",
        "List the products in the {category} category priced above the overall average price.",
        "Show {category} products whose price is higher than the average product price.",
        "Find the {category} products that are more expensive than the average product.",
    ),
    _t(
        "shop_products_large_quantity",
        "shop",
        "SELECT name FROM products "
        "WHERE product_id IN (SELECT product_id FROM order_items WHERE quantity >= {qty})",
        "Which products have been ordered with a quantity of at least {qty} in a single order item?",
        "List the products that appear in some order item with quantity {qty} or more.",
        "Show the names of products ordered {qty} or more at a time.",
        "Find the products that had an order item of at least {qty} units.",
    ),
    _t(
        "shop_distinct_cities_by_year",
        "shop",
        "SELECT DISTINCT city FROM customers WHERE signup_year = {year}",
        "Which different cities do the customers who signed up in {year} come from?",
        "List the distinct cities of customers who joined in {year}.",
        "Show each city, once, that has a customer who signed up in {year}.",
        "What are the distinct cities of customers with signup year {year}?",
    ),
    _t(
        "shop_price_range_of_category",
        "shop",
        "SELECT MIN(price), MAX(price) FROM products WHERE category = '{category}'",
        "What are the lowest and highest prices in the {category} category?",
        "Give the minimum and maximum price of {category} products.",
        "Show the cheapest and the most expensive price among {category} products.",
        "Find the price range, minimum and maximum, of the products in {category}.",
    ),
    _t(
        "shop_orders_per_customer_in_city",
        "shop",
        "SELECT T1.name, COUNT(*) FROM customers AS T1 JOIN orders AS T2 ON T1.customer_id = T2.customer_id "
        "WHERE T1.city = '{city}' GROUP BY T1.customer_id",
        "How many orders has each customer from {city} placed?",
        "For every customer in {city}, count their orders.",
        "Show the name and number of orders of each customer living in {city}.",
        "List the customers from {city} with how many orders each of them made.",
    ),
    # --- school ---
    _t(
        "school_students_by_major_and_year",
        "school",
        "SELECT name FROM students WHERE major = '{major}' AND year = {year}",
        "List the names of {major} students in year {year}.",
        "Which students majoring in {major} are in year {year}?",
        "Show the students whose major is {major} and who are in year {year}.",
        "Find all year {year} students with a major in {major}.",
    ),
    _t(
        "school_count_older_students",
        "school",
        "SELECT COUNT(*) FROM students WHERE age > {age}",
        "How many students are older than {age}?",
        "Count the students whose age is above {age}.",
        "What is the number of students over {age} years old?",
        "How many students have an age greater than {age}?",
    ),
    _t(
        "school_courses_starting_with",
        "school",
        "SELECT title, credits FROM courses WHERE title LIKE '{letter}%'",
        "Which courses have a title starting with {letter}? Show title and credits.",
        "List the title and credits of courses whose title begins with {letter}.",
        "Show the courses, with their credits, whose title starts with the letter {letter}.",
        "Find the title and credits of every course beginning with '{letter}'.",
    ),
    _t(
        "school_teachers_two_departments",
        "school",
        "SELECT name FROM teachers WHERE department IN ('{department1}', '{department2}')",
        "Which teachers work in the {department1} or {department2} department?",
        "List the teachers of {department1} and {department2}.",
        "Show the names of teachers from {department1} or {department2}.",
        "Find the teachers belonging to either {department1} or {department2}.",
    ),
    _t(
        "school_average_grade_of_course",
        "school",
        "SELECT AVG(T1.grade) FROM enrollments AS T1 JOIN courses AS T2 ON T1.course_id = T2.course_id "
        "WHERE T2.title = '{course}'",
        "What is the average grade in {course}?",
        "Give the mean grade of the students enrolled in {course}.",
        "Show the average grade for the course {course}.",
        "Find the average enrollment grade of the {course} course.",
    ),
    _t(
        "school_courses_of_student",
        "school",
        "SELECT T3.title FROM students AS T1 JOIN enrollments AS T2 ON T1.student_id = T2.student_id "
        "JOIN courses AS T3 ON T2.course_id = T3.course_id WHERE T1.name = '{student}'",
        "Which courses is {student} enrolled in?",
        "List the titles of the courses taken by {student}.",
        "Show all course titles for the student {student}.",
        "What courses does {student} take?",
    ),
    _t(
        "school_courses_of_teacher",
        "school",
        "SELECT T1.title FROM courses AS T1 JOIN teachers AS T2 ON T1.teacher_id = T2.teacher_id "
        "WHERE T2.name = '{teacher}'",
        "What courses does {teacher} teach?",
        "List the titles of the courses taught by {teacher}.",
        "Show the courses whose teacher is {teacher}.",
        "Which courses are given by {teacher}?",
    ),
    _t(
        "school_large_majors",
        "school",
        "SELECT major, COUNT(*) FROM students GROUP BY major HAVING COUNT(*) >= {n}",
        "Which majors have at least {n} students? Show the major and the count.",
        "List each major with {n} or more students, along with its number of students.",
        "For the majors that have at least {n} students, show the major and how many students it has.",
        "Give the majors with no fewer than {n} students and their student counts.",
    ),
    _t(
        "school_earliest_hired_teachers",
        "school",
        "SELECT name, hire_year FROM teachers ORDER BY hire_year LIMIT {k}",
        "Which {k} teachers were hired earliest? Show name and hire year.",
        "List the names and hire years of the {k} longest-serving teachers.",
        "Show the {k} teachers with the earliest hire year, with their hire years.",
        "Give the name and hire year of the first {k} teachers hired.",
    ),
    _t(
        "school_students_not_enrolled",
        "school",
        "SELECT name FROM students WHERE major = '{major}' "
        "AND student_id NOT IN (SELECT student_id FROM enrollments)",
        "Which {major} students are not enrolled in any course?",
        "List the students majoring in {major} who have no enrollments.",
        "Show the {major} majors that are not taking any course.",
        "Find the students with major {major} who never enrolled in a course.",
    ),
    _t(
        "school_older_than_average_in_year",
        "school",
        "SELECT name, age FROM students WHERE year = {year} AND age > (SELECT AVG(age) FROM students)",
        "Which year {year} students are older than the average student? Show name and age.",
        "List the name and age of students in year {year} whose age is above the average age.",
        "Show year {year} students older than the average age of all students, with their ages.",
        "Find the names and ages of year {year} students who are older than average.",
    ),
    _t(
        "school_majors_in_course",
        "school",
        "SELECT DISTINCT T1.major FROM students AS T1 "
        "JOIN enrollments AS T2 ON T1.student_id = T2.student_id "
        "JOIN courses AS T3 ON T2.course_id = T3.course_id WHERE T3.title = '{course}'",
        "What are the different majors of the students taking {course}?",
        "List the distinct majors among students enrolled in {course}.",
        "Show each major, once, of the students in the course {course}.",
        "Which distinct majors are represented in {course}?",
    ),
    _t(
        "school_total_credits_of_department",
        "school",
        "SELECT SUM(credits) FROM courses WHERE department = '{department}'",
        "What is the total number of credits of the {department} courses?",
        "Sum the credits of all courses in the {department} department.",
        "How many credits do the {department} courses add up to?",
        "Give the total credits offered by the {department} department.",
    ),
    # --- library ---
    _t(
        "library_books_of_genre",
        "library",
        "SELECT title FROM books WHERE genre = '{genre}'",
        "List the titles of all {genre} books.",
        "What books belong to the {genre} genre?",
        "Show the titles of books whose genre is {genre}.",
        "Which books are {genre} books?",
    ),
    _t(
        "library_long_recent_books",
        "library",
        "SELECT title, pages FROM books WHERE pages > {pages} AND published_year >= {year}",
        "Which books published in {year} or later have more than {pages} pages? Show title and pages.",
        "List the title and page count of books with over {pages} pages published since {year}.",
        "Show books from {year} onwards that are longer than {pages} pages, with their pages.",
        "Find the titles and pages of books with more than {pages} pages published no earlier than {year}.",
    ),
    _t(
        "library_titles_with_word",
        "library",
        "SELECT title FROM books WHERE title LIKE '%{word}%'",
        "Which books have the word {word} in their title?",
        "List the book titles containing '{word}'.",
        "Show all books whose title includes {word}.",
        "Find the titles that contain the word {word}.",
    ),
    _t(
        "library_count_authors_from_country",
        "library",
        "SELECT COUNT(*) FROM authors WHERE country = '{country}'",
        "How many authors are from {country}?",
        "Count the authors whose country is {country}.",
        "What is the number of authors from {country}?",
        "How many authors in the library come from {country}?",
    ),
    _t(
        "library_books_by_author",
        "library",
        "SELECT T1.title FROM books AS T1 JOIN authors AS T2 ON T1.author_id = T2.author_id "
        "WHERE T2.name = '{author}'",
        "What books did {author} write?",
        "List the titles of the books written by {author}.",
        "Show all book titles by the author {author}.",
        "Which titles were written by {author}?",
    ),
    _t(
        "library_average_loan_days_in_city",
        "library",
        "SELECT AVG(T2.days) FROM members AS T1 JOIN loans AS T2 ON T1.member_id = T2.member_id "
        "WHERE T1.city = '{city}'",
        "What is the average loan length in days for members from {city}?",
        "Give the mean number of days of loans made by members living in {city}.",
        "Show the average days of the loans of {city} members.",
        "How many days on average do members from {city} keep a loan?",
    ),
    _t(
        "library_genres_read_by_member",
        "library",
        "SELECT DISTINCT T3.genre FROM members AS T1 JOIN loans AS T2 ON T1.member_id = T2.member_id "
        "JOIN books AS T3 ON T2.book_id = T3.book_id WHERE T1.name = '{member}'",
        "Which genres has {member} borrowed?",
        "List the distinct genres of the books borrowed by {member}.",
        "Show every genre, once, that {member} has taken on loan.",
        "What different genres of books has {member} borrowed?",
    ),
    _t(
        "library_books_per_genre",
        "library",
        "SELECT genre, COUNT(*) FROM books GROUP BY genre",
        "How many books are there in each genre?",
        "Show each genre and the number of books in it.",
        "Count the books of every genre.",
        "List every genre together with its number of books.",
    ),
    _t(
        "library_prolific_authors",
        "library",
        "SELECT T2.name FROM books AS T1 JOIN authors AS T2 ON T1.author_id = T2.author_id "
        "GROUP BY T1.author_id HAVING COUNT(*) >= {n}",
        "Which authors have written at least {n} books?",
        "List the authors with {n} or more books.",
        "Show the names of authors who wrote no fewer than {n} books.",
        "Find the authors that have at least {n} books in the library.",
    ),
    _t(
        "library_longest_books_of_genre",
        "library",
        "SELECT title, pages FROM books WHERE genre = '{genre}' ORDER BY pages DESC LIMIT {k}",
        "What are the {k} longest {genre} books? Show title and pages.",
        "List the title and pages of the {k} {genre} books with the most pages.",
        "Show the top {k} {genre} books by number of pages, with their pages.",
        "Give the titles and page counts of the {k} longest books in {genre}.",
    ),
    _t(
        "library_never_borrowed_books",
        "library",
        "SELECT title FROM books WHERE genre = '{genre}' AND book_id NOT IN (SELECT book_id FROM loans)",
        "Which {genre} books have never been borrowed?",
        "List the {genre} books that were never loaned.",
        "Show the titles of {genre} books without any loans.",
        "Find the {genre} books that nobody has borrowed.",
    ),
    _t(
        "library_members_with_long_loans",
        "library",
        "SELECT name FROM members WHERE member_id IN (SELECT member_id FROM loans WHERE days > {days})",
        "Which members have had a loan longer than {days} days?",
        "List the members who kept a book for more than {days} days.",
        "Show the names of members with some loan of over {days} days.",
        "Find the members that borrowed a book for more than {days} days.",
    ),
    _t(
        "library_oldest_book_of_genre",
        "library",
        "SELECT MIN(published_year) FROM books WHERE genre = '{genre}'",
        "When was the oldest {genre} book published?",
        "What is the earliest publication year of a {genre} book?",
        "Give the minimum published year among {genre} books.",
        "Find the year the first {genre} book in the library was published.",
    ),
    _t(
        "library_authors_older_than_average",
        "library",
        "SELECT name FROM authors WHERE country = '{country}' "
        "AND birth_year < (SELECT AVG(birth_year) FROM authors)",
        "Which authors from {country} were born before the average birth year of all authors?",
        "List the {country} authors born earlier than the average author.",
        "Show authors from {country} whose birth year is below the average birth year.",
        "Find the authors of {country} who are older than the average author.",
    ),
)


def sql_literal(value: Any) -> str:
    """A value as it goes into a template's SQL (the template supplies any quotes)."""
    return str(value).replace("'", "''")


def informative(rows: list[tuple]) -> bool:
    """A result worth asking for: some row, and not only NULLs and zeros (e.g. COUNT = 0)."""
    return any(cell not in (None, 0) for row in rows for cell in row)


def split_pool(values: list[Any]) -> tuple[list[Any], list[Any]]:
    """(train values, dev values): every fourth value, counted from the second, is dev's."""
    ordered = sorted(set(values), key=lambda v: (isinstance(v, str), v))
    return [v for i, v in enumerate(ordered) if i % 4 != 1], [v for i, v in enumerate(ordered) if i % 4 == 1]


def _pool_values(conn: sqlite3.Connection, source: str | list[Any]) -> list[Any]:
    return list(source) if isinstance(source, list) else [row[0] for row in conn.execute(source)]


def fillings(template: Template, conn: sqlite3.Connection, split: str) -> list[dict[str, Any]]:
    """Every assignment of `split`'s pool values to the slots whose gold result is informative."""
    pools = POOLS[template.db_id]
    choices = []
    for slot in template.slots:
        train, dev = split_pool(_pool_values(conn, pools[pool_of(slot)]))
        choices.append(dev if split == "dev" else train)
    found = []
    for values in itertools.product(*choices):
        filling = dict(zip(template.slots, values, strict=True))
        same_pool = [filling[s] for s in template.slots if pool_of(s) != s]
        if len(same_pool) != len(set(same_pool)):
            continue
        sql = template.sql.format(**{k: sql_literal(v) for k, v in filling.items()})
        if informative(conn.execute(sql).fetchall()):
            found.append(filling)
    return found


def _record(template: Template, filling: dict[str, Any], paraphrase: int) -> dict[str, Any]:
    return {
        "db_id": template.db_id,
        "query": template.sql.format(**{k: sql_literal(v) for k, v in filling.items()}),
        "question": template.questions[paraphrase].format(**filling),
        "template": template.name,
        "paraphrase": paraphrase,
        "held_out_paraphrase": paraphrase == len(template.questions) - 1,
    }


def template_examples(
    template: Template, conn: sqlite3.Connection, split: str, rng: random.Random
) -> list[dict]:
    """Up to TRAIN_PER_TEMPLATE (train) or DEV_PER_TEMPLATE (dev) records for one template.

    Train spreads its fillings over the seen paraphrases; dev uses held-out values, and the
    held-out paraphrase for every other record (the only record of a template without slots);
    a template with fewer held-out fillings than records asks each filling in both wordings.
    """
    fills = fillings(template, conn, split)
    rng.shuffle(fills)
    seen = len(template.questions) - 1
    if split == "train":
        pairs = [(f, (i + j) % seen) for j in range(seen) for i, f in enumerate(fills)]
        return [_record(template, f, p) for f, p in pairs[:TRAIN_PER_TEMPLATE]]
    if not template.slots:
        return [_record(template, fills[0], seen)] if fills else []
    kinds = [[seen, rng.randrange(seen)] for _ in fills]  # held-out wording, then a seen one
    pairs = [(f, kinds[i][(i + j) % 2]) for j in range(2) for i, f in enumerate(fills)]
    return [_record(template, f, p) for f, p in pairs[:DEV_PER_TEMPLATE]]


def spider_splits(databases: list[Database], seed: str) -> dict[str, list[dict[str, Any]]]:
    """{"train": [...], "dev": [...]} in Spider's record shape, for the demo databases.

    Records come in rounds that each hold one record of every template still left, in a
    shuffled order, so that any first N records (a loader's `limit`) cover the templates evenly.
    """
    conns = {db.db_id: memory_connection(db) for db in databases}
    splits: dict[str, list[dict[str, Any]]] = {}
    for split in ("train", "dev"):
        rng = random.Random(f"{seed}-{split}")
        per_template = [template_examples(t, conns[t.db_id], split, rng) for t in TEMPLATES]
        splits[split] = []
        for round_ in itertools.zip_longest(*per_template):
            records = [r for r in round_ if r is not None]
            rng.shuffle(records)
            splits[split] += records
    for conn in conns.values():
        conn.close()
    return splits


# --- phase 1: gretel-shaped rows on small fresh tables ----------------------------------------

COMPLEXITY = {
    "basic SQL": "basic SQL with a simple select statement",
    "aggregation": "aggregation functions (COUNT, SUM, AVG, MIN, MAX, etc.), and HAVING clause",
    "single join": "only one join (specify inner, outer, cross)",
    "subqueries": "subqueries, including correlated and nested subqueries",
}


@dataclass(frozen=True)
class MiniTemplate:
    """A phase-1 shape over any MiniDomain: `{child}`, `{measure}` ... name the domain's parts."""

    complexity: str
    sql: str
    questions: tuple[str, ...]
    explanation: str


def _m(complexity: str, sql: str, explanation: str, *questions: str) -> MiniTemplate:
    return MiniTemplate(complexity, sql, questions, explanation)


MINI_TEMPLATES: tuple[MiniTemplate, ...] = (
    _m(
        "basic SQL",
        "SELECT name FROM {child} WHERE {category} = '{cat}'",
        "The query selects the name column of {child}, keeping the rows whose {category} is '{cat}'.",
        "List the names of {children} whose {category_label} is {cat}.",
        "Which {children} have {category_label} {cat}?",
        "Show the {children} with a {category_label} of {cat}.",
    ),
    _m(
        "basic SQL",
        "SELECT name, {measure} FROM {child} WHERE {measure} > {x}",
        "The query filters {child} on {measure} > {x} and returns name and {measure}.",
        "Which {children} have {measure_label} above {x}? Show name and {measure_label}.",
        "List the name and {measure_label} of {children} with more than {x} {measure_label}.",
        "Show {children} whose {measure_label} is greater than {x}, with their {measure_label}.",
    ),
    _m(
        "basic SQL",
        "SELECT name FROM {child} ORDER BY {measure} DESC LIMIT {k}",
        "The query sorts {child} by {measure} in descending order and keeps the first {k} names.",
        "What are the {k} {children} with the highest {measure_label}?",
        "List the top {k} {children} by {measure_label}.",
        "Show the names of the {k} {children} with the largest {measure_label}.",
    ),
    _m(
        "basic SQL",
        "SELECT name FROM {child} WHERE name LIKE '{letter}%'",
        "The query uses LIKE '{letter}%' to keep the {child} whose name starts with {letter}.",
        "Which {children} have a name starting with {letter}?",
        "List the {children} whose names begin with {letter}.",
        "Show all {children} with a name that starts with '{letter}'.",
    ),
    _m(
        "basic SQL",
        "SELECT name FROM {child} WHERE {category} IN ('{cat1}', '{cat2}')",
        "The query keeps the {child} whose {category} is in the list ('{cat1}', '{cat2}').",
        "List the {children} whose {category_label} is {cat1} or {cat2}.",
        "Which {children} have {category_label} {cat1} or {cat2}?",
        "Show the names of {cat1} and {cat2} {children}.",
    ),
    _m(
        "basic SQL",
        "SELECT DISTINCT {category} FROM {child} WHERE {measure} < {x}",
        "The query returns each {category} once among the {child} with {measure} below {x}.",
        "What are the distinct {category_label} values of {children} with {measure_label} under {x}?",
        "List each {category_label}, once, of the {children} whose {measure_label} is less than {x}.",
        "Which different {category_label} values do {children} with less than {x} {measure_label} have?",
    ),
    _m(
        "aggregation",
        "SELECT {category}, AVG({measure}) FROM {child} GROUP BY {category}",
        "The query groups {child} by {category} and computes the average {measure} of each group.",
        "What is the average {measure_label} of {children} for each {category_label}?",
        "Show every {category_label} with the average {measure_label} of its {children}.",
        "For each {category_label}, give the mean {measure_label} of the {children}.",
    ),
    _m(
        "aggregation",
        "SELECT COUNT(*) FROM {child} WHERE {category} = '{cat}'",
        "The query counts the rows of {child} whose {category} is '{cat}'.",
        "How many {children} have {category_label} {cat}?",
        "Count the {children} whose {category_label} is {cat}.",
        "What is the number of {cat} {children}?",
    ),
    _m(
        "aggregation",
        "SELECT MAX({measure}) FROM {child} WHERE {category} = '{cat}'",
        "The query takes the maximum {measure} over the {child} whose {category} is '{cat}'.",
        "What is the highest {measure_label} among {cat} {children}?",
        "Give the maximum {measure_label} of the {children} with {category_label} {cat}.",
        "Find the largest {measure_label} among {cat} {children}.",
    ),
    _m(
        "aggregation",
        "SELECT {category} FROM {child} GROUP BY {category} HAVING COUNT(*) > {n}",
        "The query groups {child} by {category} and keeps the groups with more than {n} rows.",
        "Which {category_label} values have more than {n} {children}?",
        "List each {category_label} shared by more than {n} {children}.",
        "Show the {category_label} values that occur for over {n} {children}.",
    ),
    _m(
        "single join",
        "SELECT T1.name FROM {child} AS T1 JOIN {parent} AS T2 ON T1.{fk} = T2.id "
        "WHERE T2.{attr} = '{place}'",
        "The query joins {child} to {parent} on {fk} and keeps the {child} whose {parent_noun} has {attr} "
        "'{place}'.",
        "List the {children} of {parents} located in {place}.",
        "Which {children} belong to a {parent_noun} in {place}?",
        "Show the names of {children} whose {parent_noun} is in {place}.",
    ),
    _m(
        "single join",
        "SELECT T2.name, SUM(T1.{measure}) FROM {child} AS T1 JOIN {parent} AS T2 ON T1.{fk} = T2.id "
        "GROUP BY T2.name",
        "The query joins {child} to {parent} and sums {measure} per {parent_noun}.",
        "What is the total {measure_label} of the {children} of each {parent_noun}?",
        "Show each {parent_noun} with the summed {measure_label} of its {children}.",
        "For every {parent_noun}, give the total {measure_label} of its {children}.",
    ),
    _m(
        "subqueries",
        "SELECT name FROM {child} WHERE {measure} > (SELECT AVG({measure}) FROM {child})",
        "A scalar subquery computes the average {measure}; the outer query keeps the {child} above it.",
        "Which {children} have {measure_label} above the average?",
        "List the {children} whose {measure_label} is greater than the average {measure_label}.",
        "Show the names of {children} with a higher {measure_label} than average.",
    ),
    _m(
        "subqueries",
        "SELECT name FROM {parent} WHERE id NOT IN (SELECT {fk} FROM {child})",
        "The subquery lists the {parent} ids used by {child}; NOT IN keeps the {parent} that have none.",
        "Which {parents} have no {children}?",
        "List the {parents} without any {children}.",
        "Show the names of {parents} that no {child_noun} belongs to.",
    ),
)

_MINI_SLOTS = {
    "cat": "SELECT DISTINCT {category} FROM {child}",
    "x": "SELECT {measure} FROM {child}",
    "k": [2, 3],
    "n": [1, 2],
    "letter": "SELECT DISTINCT substr(name, 1, 1) FROM {child}",
    "place": "SELECT DISTINCT {attr} FROM {parent}",
}


def _plural(noun: str) -> str:
    return noun[:-1] + "ies" if noun.endswith("y") and noun[-2] not in "aeiou" else noun + "s"


def domain_words(domain: MiniDomain) -> dict[str, str]:
    """Names a MiniTemplate uses: tables and columns as written in SQL, and their English labels."""
    return {
        "child": domain.child,
        "parent": domain.parent,
        "category": domain.category,
        "measure": domain.measure,
        "attr": domain.attr,
        "fk": domain.fk,
        "children": _plural(domain.child_noun),
        "child_noun": domain.child_noun,
        "parents": _plural(domain.parent_noun),
        "parent_noun": domain.parent_noun,
        "category_label": domain.category.replace("_", " "),
        "measure_label": domain.measure.replace("_mw", " (MW)").replace("_", " "),
    }


def gretel_context(tables: list[Table]) -> str:
    """CREATE TABLE and INSERT statements in gretel's style (INT, VARCHAR(50), one INSERT a table)."""
    statements = []
    for table in tables:
        cols = ", ".join(f"{c.name} {'INT' if c.kind == 'number' else 'VARCHAR(50)'}" for c in table.columns)
        statements.append(f"CREATE TABLE {table.name} ({cols});")
        rows = ", ".join("(" + ", ".join(_value(v) for v in row) + ")" for row in table.rows)
        names = ", ".join(c.name for c in table.columns)
        statements.append(f"INSERT INTO {table.name} ({names}) VALUES {rows};")
    return " ".join(statements)


def _value(value: Any) -> str:
    return str(value) if isinstance(value, int) else "'" + sql_literal(value) + "'"


def _slots_of(template: MiniTemplate) -> list[str]:
    found: list[str] = []
    for text in (template.sql, *template.questions):
        found += [f for _, f, _, _ in string.Formatter().parse(text) if f and pool_of(f) in _MINI_SLOTS]
    return list(dict.fromkeys(found))


def _phase1_row(index: int, template: MiniTemplate, domain: MiniDomain, rng: random.Random) -> dict[str, Any]:
    words = domain_words(domain)
    for _ in range(100):
        tables = list(domain.tables(rng))
        conn = sqlite3.connect(":memory:")
        conn.executescript(gretel_context(tables))
        filling: dict[str, Any] = {}
        for slot in _slots_of(template):
            source = _MINI_SLOTS[pool_of(slot)]
            pool = list(source) if isinstance(source, list) else _pool_values(conn, source.format(**words))
            options = [v for v in sorted(pool) if v not in filling.values()]
            filling[slot] = rng.choice(options) if options else None
        sql = template.sql.format(**words, **{k: sql_literal(v) for k, v in filling.items()})
        rows = conn.execute(sql).fetchall() if None not in filling.values() else []
        conn.close()
        if informative(rows):
            used = [t for t in tables if re.search(rf"\b{t.name}\b", sql)]
            return {
                "id": index,
                "domain": domain.domain,
                "domain_description": domain.description,
                "sql_complexity": template.complexity,
                "sql_complexity_description": COMPLEXITY[template.complexity],
                "sql_task_type": "analytics and reporting",
                "sql_task_type_description": "generating reports, dashboards, and analytical insights",
                "sql_prompt": rng.choice(template.questions).format(**words, **filling),
                "sql_context": gretel_context(used),
                "sql": sql,
                "sql_explanation": template.explanation.format(**words, **filling),
            }
    raise RuntimeError(f"no informative filling for phase-1 template {template.sql!r} in {domain.domain}")


def phase1_rows(seed: str, size: int = PHASE1_SIZE) -> list[dict[str, Any]]:
    """`size` gretel-shaped rows cycling through every (template, domain) pair."""
    rng = random.Random(f"{seed}-phase1")
    pairs = [(t, d) for t in MINI_TEMPLATES for d in MINI_DOMAINS]
    return [_phase1_row(i + 1, *pairs[i % len(pairs)], rng) for i in range(size)]
