"""One short file per algorithm, readable top to bottom: a ``Config`` dataclass and
``train(...) -> History``. See each module's docstring for the chapter that explains it."""
