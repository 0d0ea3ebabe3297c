"""F6 as a pure function: import, hold or reject a return package by its sequence (no files)."""

from __future__ import annotations

from exchange.rules.sequence import ChannelSequences, Decision, Imported, Release, decide, numbers_text, releasable

CH = "MOBILE-PL"


def state(*numbers: int, releases: tuple[Release, ...] = ()) -> ChannelSequences:
    return ChannelSequences(CH, {n: Imported(n, f"RET_{n}.zip", f"2026-12-08T05:4{n % 10}:00Z") for n in numbers},
                            releases)


def test_the_first_package_sets_the_start_whatever_its_number():
    assert decide(state(), 5) == Decision("import")
    assert state(5).expected() == 6


def test_the_next_number_is_imported():
    assert decide(state(1, 2), 3) == Decision("import")


def test_a_package_ahead_of_a_gap_is_held_naming_the_numbers_missing():
    assert decide(state(1), 3) == Decision("hold", "sequence 3; waiting for 2", (2,))
    assert decide(state(1), 5) == Decision("hold", "sequence 5; waiting for 2, 3, 4", (2, 3, 4))
    assert decide(state(1), 6) == Decision("hold", "sequence 6; waiting for 2-5", (2, 3, 4, 5))


def test_a_hold_does_not_wait_for_numbers_that_are_in_the_inbox_too():
    assert decide(state(1), 4, waiting=[3]) == Decision("hold", "sequence 4; waiting for 2", (2,))


def test_an_imported_number_with_other_content_is_rejected_naming_the_file_and_when():
    assert decide(state(1, 2), 2) == Decision(
        "reject", "sequence 2 of MOBILE-PL was imported from RET_2.zip at 2026-12-08T05:42:00Z; "
                  "this package has other content (F6)")


def test_a_release_moves_the_expected_number_past_the_gap():
    released = state(1, 2, releases=(Release(5, "tablet lost", "2026-12-08T06:00:00Z"),))
    assert released.expected() == 5
    assert decide(released, 5) == Decision("import")
    assert decide(released, 6) == Decision("hold", "sequence 6; waiting for 5", (5,))


def test_a_released_number_that_comes_after_all_is_rejected_naming_the_release():
    released = state(1, 2, releases=(Release(5, "tablet lost", "2026-12-08T06:00:00Z"),))
    assert decide(released, 3) == Decision(
        "reject", "sequence 3 of MOBILE-PL was released at 2026-12-08T06:00:00Z (\"tablet lost\"): the numbers "
                  "below 5 still missing then were given up; import it by hand if it is still wanted (F6)")


def test_a_number_before_the_start_is_rejected():
    assert decide(state(5), 3) == Decision(
        "reject", "sequence 3 of MOBILE-PL is before the channel's first imported package "
                  "(sequence 5, RET_5.zip at 2026-12-08T05:45:00Z) (F6)")


def test_missing_lists_what_the_held_packages_wait_for():
    assert state(1).missing([3, 5]) == [2, 4]
    assert state(1).missing([]) == []
    assert state().missing([3]) == []


def test_releasable_is_what_is_missing_below_the_number():
    assert releasable(state(1, 2), 5) == [3, 4]
    assert releasable(state(1, 2), 3) == []
    assert releasable(state(), 5) == []  # no start yet: nothing can be missing


def test_numbers_text():
    assert numbers_text((2,)) == "2"
    assert numbers_text((2, 3, 4)) == "2, 3, 4"
    assert numbers_text((2, 3, 4, 5)) == "2-5"
    assert numbers_text((2, 4, 6, 8)) == "2, 4, 6, 8"
