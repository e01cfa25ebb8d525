"""The course's build and check scripts; ``scripts.prepare`` is imported as a module by its own worker processes."""
