"""The sampling engine: compile once per model structure, sample, diagnose; the named random
streams of everything drawn outside the sampler; settings for the package's own compiled code
and processes; running many fits as tasks."""
