"""Broken and hostile inputs for every parser of the agent, each with the clean verdict it must
get: exit 3 naming the problem for the agent's own configuration, a specific result status and
reason for the files and answers of the device it audits."""
