"""Input and output: files written atomically, where the package finds its files, errors a user
can act on, argument checks, and text for the terminal."""
