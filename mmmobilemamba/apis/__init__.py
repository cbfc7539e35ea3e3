"""Engines that the command-line tools call."""
