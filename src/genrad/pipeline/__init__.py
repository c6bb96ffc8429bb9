"""The main job end to end: validate data -> train -> generate -> fidelity -> privacy -> utility -> report."""
