"""Neutral analysis of loop models: ``diff`` (two loops compared) and ``compare`` (a traced run against its model).

Reads only model fields and the wording a framework adapter supplies; imports no framework.
"""
