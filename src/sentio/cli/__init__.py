"""Command line: ``sentio`` and its aliases ``sencli`` and ``saudit``. No logic lives here."""
