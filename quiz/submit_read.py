"""The submit's read on PostgreSQL through the driver: one prepared statement per connection.

Thousands of submits a burst each run the same one-row select (quiz/answers.py). Through
SQLAlchemy's execute, most of its CPU on PostgreSQL is around the query: the statement's cache
key, the execution context, the result's description and processors. Here the statement is
compiled once per process and run on the pooled connection's own psycopg connection with
`prepare=True` (parsed and planned once per connection, its description known), and its row
built with the same type processors as SQLAlchemy's: the same values, in a named tuple. Any
driver error hands the read to SQLAlchemy's execute, which meets it as it always has (a dropped
connection invalidated and the pool renewed, the error wrapped for the caller's retry).
"""
from collections import namedtuple

from sqlalchemy import Select
from sqlalchemy.engine import Connection, Dialect


class PreparedRead:
    """`statement` (a select with named binds), run through the driver where it prepares."""

    def __init__(self, statement: Select, dialect: Dialect):
        self.statement = statement
        self.driver = dialect.driver == "psycopg"
        self.sql = str(statement.compile(dialect=dialect))
        columns = list(statement.selected_columns)
        self.row = namedtuple("Row", [column.key for column in columns])
        self.processors = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                           for column in columns]

    def first(self, connection: Connection, params: dict):
        """The first row (a named tuple), or None."""
        if not self.driver:
            return connection.execute(self.statement, params).first()
        dbapi = connection.dialect.loaded_dbapi
        try:
            values = connection.connection.driver_connection.execute(
                self.sql, params, prepare=True).fetchone()
        except dbapi.Error:
            return connection.execute(self.statement, params).first()
        if values is None:
            return None
        return self.row._make(value if process is None else process(value)
                              for process, value in zip(self.processors, values))
