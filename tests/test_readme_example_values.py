"""The values the README's example states in its comments."""

import fastplace


def test_readme_example_values() -> None:
    cluster = fastplace.Cluster([[65536, 40000], [65536, 40000], [32768, 20000]])
    request = [3008, fastplace.cpu_for_memory(3008)]
    assert request == [3008, 1700]
    assert cluster.first_fit(request) == 0
