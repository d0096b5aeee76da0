"""Whole-search trials: the simulated field, the real locator and search guidance wired together.

This room sits above ``firmware_sim`` (the field), ``receiver`` and ``locator`` (the real code
under trial): it runs whole simulated searches and generates seeded search cases for the
benchmarks. Nothing below it imports it; ``ui`` does not need it.
"""
