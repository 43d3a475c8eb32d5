"""The sampling engine: compile once per model structure, sample, diagnose; settings for the
package's own compiled code and processes; running many fits as tasks."""
