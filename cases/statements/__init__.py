"""Statements of reasons (EU Digital Services Act, Articles 17 and 24(5)).

Every enforcement restricts apps or accounts; each restriction is explained to the developer
in its notice and described, without personal data, in a statement for the Commission's DSA
Transparency Database. ``catalog.toml`` maps policies and actions to the database's terms
(data a legal team edits); ``build`` turns Caseward's records into statements, ``validate``
checks them against the database's rules, ``export`` writes them as JSON lines and
``submission`` sends them, each puid once.
"""
