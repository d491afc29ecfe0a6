"""Neutral analysis of loop models: ``diff`` (two loops compared), ``compare`` (a traced run against its model) and
``lint`` (``loopdoc check``'s rule engine and neutral rules).

Reads only model fields and what a framework adapter supplies (its wording, its ``LintFacts``); imports no framework.
"""
