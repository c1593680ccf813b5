"""The duplicate check asks the index once per new series, then only for a UID seen again."""

from __future__ import annotations

from dataclasses import dataclass, field

from regional_archive.features.new_series import NewSeries


@dataclass
class Index:
    series: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)

    def has(self, series: str) -> bool:
        self.asked.append(series)
        return series in self.series


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_new_series_is_asked_about_once_and_its_instances_skip_the_index() -> None:
    index, memory = Index(), NewSeries()
    assert [memory.must_look_up("1.2.3", f"1.2.3.{n}", index.has) for n in range(50)] == [False] * 50
    assert index.asked == ["1.2.3"]


def test_a_uid_seen_again_in_a_new_series_is_looked_up() -> None:
    index, memory = Index(), NewSeries()
    assert not memory.must_look_up("1.2.3", "1.2.3.1", index.has)
    assert memory.must_look_up("1.2.3", "1.2.3.1", index.has)


def test_every_instance_of_a_series_that_existed_is_looked_up() -> None:
    index, memory = Index(series={"9.9"}), NewSeries()
    assert all(memory.must_look_up("9.9", f"9.9.{n}", index.has) for n in range(3))
    assert index.asked == ["9.9", "9.9", "9.9"]


def test_an_idle_series_is_forgotten_and_asked_about_again() -> None:
    clock, index = Clock(), Index()
    memory = NewSeries(idle_seconds=600, clock=clock)
    memory.must_look_up("1.2.3", "1.2.3.1", index.has)
    clock.now = 599
    memory.must_look_up("1.2.3", "1.2.3.2", index.has)
    clock.now = 1300
    index.series.add("1.2.3")  # stored meanwhile, e.g. by another Orthanc after a restart here
    assert memory.must_look_up("1.2.3", "1.2.3.3", index.has)
    assert index.asked == ["1.2.3", "1.2.3"]


def test_the_oldest_series_make_room_for_new_ones() -> None:
    index, memory = Index(), NewSeries(capacity=2)
    for series in ("a", "b", "c"):
        memory.must_look_up(series, f"{series}.1", index.has)
    memory.must_look_up("a", "a.2", index.has)  # "a" was pushed out: asked again
    memory.must_look_up("c", "c.2", index.has)  # "c" is remembered
    assert index.asked == ["a", "b", "c", "a"]
