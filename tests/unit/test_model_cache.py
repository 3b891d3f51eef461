from workers.jobs.model_cache import ModelCache


def test_lru_evicts_the_least_recently_used_past_the_budget() -> None:
    loads = []

    def loader(name: str):
        return lambda: loads.append(name) or name

    cache = ModelCache(budget_bytes=20, size_of=lambda value: 10)
    cache.get(("a", 1), loader("a"))
    cache.get(("b", 1), loader("b"))
    cache.get(("a", 1), loader("a"))  # a hit: "a" is now the most recent
    cache.get(("c", 1), loader("c"))  # over budget: "b" goes, not "a"
    cache.get(("a", 1), loader("a"))
    cache.get(("b", 1), loader("b"))
    assert loads == ["a", "b", "c", "b"]
    assert cache.used_bytes == 20


def test_an_entry_over_the_budget_alone_is_still_kept() -> None:
    cache = ModelCache(budget_bytes=5, size_of=lambda value: 10)
    assert cache.get(("big", 1), lambda: "big") == "big"
    assert cache.get(("big", 1), lambda: "reloaded") == "big"


def test_figures_count_hits_misses_and_what_is_held() -> None:
    cache = ModelCache(budget_bytes=20, size_of=lambda value: 10)
    cache.get(("a", 1), lambda: "a")
    cache.get(("a", 1), lambda: "a")
    cache.get(("b", 1), lambda: "b")
    cache.get(("c", 1), lambda: "c")  # "a" is evicted
    assert cache.figures() == {"hits": 1, "misses": 3, "bytes": 20, "entries": 2}
