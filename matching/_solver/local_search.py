"""Integral assignments: the local search that polishes them, and the ways to make one.

:class:`LocalSearch` improves an integral assignment by moves, swaps and exchanges of held
leads scored exactly; :func:`round_up` completes the LP's rounding, :func:`place_held` assigns
held leads along chains of moves, and :func:`greedy_fill` is the fallback when the first LP
stopped at its limit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from matching._solver.limits import LOCAL_SEARCH_ROUNDS, TIME_LIMIT, SafetyNet
from matching._solver.problem import (
    AssignmentProblem,
    FairnessTerms,
    objective,
    totals_if_all_assigned,
)

# Moves per (from rep, to rep) pair that the local search tries to combine into swaps: the
# best few keep the join of moves into swaps small.
SWAP_PARTNERS = 8
# Exchanges of a held lead for an assigned one scored exactly per round, the best by their
# two reps' penalties at the old totals (an exchange moves the window totals).
EXCHANGE_TRIES = 16


class LocalSearch:
    """Local search on an integral assignment: moves and swaps that raise the objective.

    With the set of assigned leads fixed, the window totals T and TA are constants, so each
    rep's penalty depends on its own value V_r and top-tier count N_r only (the ramp quota on
    the ramping reps' total): a move is scored exactly from the two reps it touches. Every
    round scores all relocations to reps with room and all swaps that involve a rep outside
    its band or move a lead to a rep it scores better with, then applies the best moves that
    touch disjoint reps. When none gains, a held lead may take an assigned lead's place (see
    :meth:`_exchange_held`). Only the ``movable`` leads ((n,) bool) move, to any of their pairs.
    """

    def __init__(
        self, p: AssignmentProblem, t: FairnessTerms, choice: np.ndarray, movable: np.ndarray
    ):
        self.p, self.t = p, t
        self.choice = choice.copy()
        self.movable = movable
        self.movable_pairs = np.flatnonzero(movable[p.lead])
        assigned = choice >= 0
        R = p.n_reps
        reps = p.rep[choice[assigned]]
        leads = np.flatnonzero(assigned)
        self.V = p.history_value + np.bincount(reps, p.lead_value[leads], R)
        self.N = p.history_top_tier + np.bincount(reps, p.top_tier[leads].astype(float), R)
        self.used = np.bincount(reps, minlength=R)
        self.lo, self.hi, self.top_cap, self.quota = t.limits(self.V.sum(), self.N.sum())
        self.reached: set[str] = set()  # the limit that stopped run, if one did

    def rep_penalty(self, r: np.ndarray, V: np.ndarray, N: np.ndarray) -> np.ndarray:
        t = self.t
        out = np.zeros(np.shape(r))
        if t.value_on:
            out = out + t.value_penalty * (
                np.maximum(0, self.lo[r] - V) + np.maximum(0, V - self.hi[r])
            )
        if t.cap_on:
            out = out + t.cap_penalty * np.maximum(0, N - self.top_cap)
        return out

    def ramp_penalty(self, ramp_top: np.ndarray | float) -> np.ndarray | float:
        if not self.t.ramp_on:
            return np.zeros(np.shape(ramp_top)) if np.ndim(ramp_top) else 0.0
        return self.t.ramp_penalty * np.maximum(0, self.quota - ramp_top)

    def _moves(self) -> dict[str, np.ndarray]:
        """Every candidate pair that would move an assigned lead to another rep."""
        p, choice = self.p, self.choice
        j = self.movable_pairs
        cur = choice[p.lead[j]]
        ok = cur >= 0
        ok[ok] = p.rep[cur[ok]] != p.rep[j[ok]]
        j, cur = j[ok], cur[ok]
        lead = p.lead[j]
        return {
            "pair": j,
            "lead": lead,
            "src": p.rep[cur],
            "dst": p.rep[j],
            "gain": p.score[j] - p.score[choice[lead]],
            "e": p.lead_value[lead],
            "a": p.top_tier[lead].astype(float),
        }

    def run(
        self, rounds: int, net: SafetyNet, good_enough: Callable[[np.ndarray], bool]
    ) -> np.ndarray:
        """Improve until no move gains, ``good_enough(choice)``, ``rounds`` rounds or the
        safety ``net``'s deadline; :attr:`reached` names the limit that stopped it, if one
        did."""
        for _ in range(rounds):
            if good_enough(self.choice):
                return self.choice
            if net.passed():
                self.reached.add(TIME_LIMIT)
                return self.choice
            if not (self._improve() or self._insert_held() or self._exchange_held()):
                return self.choice
        self.reached.add(LOCAL_SEARCH_ROUNDS)
        return self.choice

    def _improve(self) -> bool:
        """One round of relocations and swaps: apply the best gaining ones that touch
        disjoint reps (at most one that moves a top-tier lead across the ramp boundary);
        False when none gains."""
        p = self.p
        ramp = p.ramp.astype(float)
        m = self._moves()
        if len(m["pair"]) == 0:
            return False
        V, N = self.V, self.N
        base = self.rep_penalty(np.arange(p.n_reps), V, N)
        ramp_top = float(N[p.ramp].sum())
        ramp_now = self.ramp_penalty(ramp_top)
        src, dst, e, a = m["src"], m["dst"], m["e"], m["a"]
        # relocations
        room = self.used[dst] < p.capacity[dst]
        gain = m["gain"] - (
            self.rep_penalty(src, V[src] - e, N[src] - a)
            - base[src]
            + self.rep_penalty(dst, V[dst] + e, N[dst] + a)
            - base[dst]
            + self.ramp_penalty(ramp_top + a * (ramp[dst] - ramp[src]))
            - ramp_now
        )
        gain = np.where(room, gain, -np.inf)
        cands = [
            (
                gain,
                m["lead"],
                np.full(len(gain), -1),
                src,
                dst,
                m["pair"],
                np.full(len(gain), -1),
            )
        ]
        # swaps: move 1 takes a lead src -> dst, move 2 takes another dst -> src
        hot = base > 1e-12
        if ramp_now > 1e-12:
            hot |= p.ramp
        # a swap that gains needs one half that gains on its own unless a rep is outside
        # its band: listing only those halves keeps the join small, and so does keeping
        # the best few moves of each (from, to) rep pair; their partners are the best few
        # too, or every move when a rep is outside its band (the swap that mends a band is
        # chosen by the leads' values, not their scores)
        key = src * p.n_reps + dst
        by_key = np.lexsort((-m["gain"], key))
        rank = np.empty(len(key), dtype=np.int64)
        rank[by_key] = np.arange(len(key)) - np.searchsorted(key[by_key], key[by_key])
        best_few = rank < SWAP_PARTNERS
        one = np.flatnonzero(best_few & ((m["gain"] > 0) | hot[src] | hot[dst]))
        key1 = key[one]
        two = np.flatnonzero(best_few | hot[src] | hot[dst])
        order = two[np.argsort(dst[two] * p.n_reps + src[two], kind="stable")]
        key2 = dst[order] * p.n_reps + src[order]
        lo_ = np.searchsorted(key2, key1, "left")
        hi_ = np.searchsorted(key2, key1, "right")
        count = hi_ - lo_
        i1 = np.repeat(one, count)
        i2 = order[np.repeat(lo_ - np.cumsum(count) + count, count) + np.arange(count.sum())]
        if len(i1):
            r, r2 = src[i1], dst[i1]
            de, da = e[i2] - e[i1], a[i2] - a[i1]
            swap_gain = (
                m["gain"][i1]
                + m["gain"][i2]
                - (
                    self.rep_penalty(r, V[r] + de, N[r] + da)
                    - base[r]
                    + self.rep_penalty(r2, V[r2] - de, N[r2] - da)
                    - base[r2]
                    + self.ramp_penalty(ramp_top + da * (ramp[r] - ramp[r2]))
                    - ramp_now
                )
            )
            cands.append(
                (swap_gain, m["lead"][i1], m["lead"][i2], r, r2, m["pair"][i1], m["pair"][i2])
            )
        gains, l1, l2, ra, rb, j1, j2 = (np.concatenate(c) for c in zip(*cands, strict=True))
        good = np.flatnonzero(gains > 1e-9)
        if len(good) == 0:
            return False
        touched = np.zeros(p.n_reps, bool)
        ramp_moved = False
        for k in good[np.argsort(-gains[good], kind="stable")]:
            if touched[ra[k]] or touched[rb[k]]:
                continue
            moves_top = self.p.top_tier[l1[k]] or (l2[k] >= 0 and self.p.top_tier[l2[k]])
            if self.t.ramp_on and moves_top and ramp[ra[k]] != ramp[rb[k]]:
                if ramp_moved:
                    continue
                ramp_moved = True
            touched[ra[k]] = touched[rb[k]] = True
            self._apply(l1[k], j1[k], ra[k], rb[k])
            if l2[k] >= 0:
                self._apply(l2[k], j2[k], rb[k], ra[k])
        return True

    def _insert_held(self) -> bool:
        """Give each held lead with a rep with room (moves can free one) its best such rep."""
        p, placed = self.p, False
        held = self.movable_pairs[self.choice[p.lead[self.movable_pairs]] < 0]
        for j in held[self.used[p.rep[held]] < p.capacity[p.rep[held]]]:
            lead, r = p.lead[j], p.rep[j]
            if self.choice[lead] < 0 and self.used[r] < p.capacity[r]:
                options = np.arange(p.lead_start[lead], p.lead_start[lead + 1])
                options = options[self.used[p.rep[options]] < p.capacity[p.rep[options]]]
                best = options[np.argmax(p.score[options])]
                self.choice[lead] = best
                self.used[p.rep[best]] += 1
                self.V[p.rep[best]] += p.lead_value[lead]
                self.N[p.rep[best]] += float(p.top_tier[lead])
                placed = True
        if placed:
            self.lo, self.hi, self.top_cap, self.quota = self.t.limits(self.V.sum(), self.N.sum())
        return placed

    def _exchange_held(self) -> bool:
        """Apply the best exchange of a held lead for an assigned lead of one of its reps (held
        instead), if one gains. When capacity is short, which leads are held decides the
        reps' values; an exchange changes the window totals, so the EXCHANGE_TRIES best by
        their two reps' penalties at the old totals are scored exactly."""
        p, t, choice = self.p, self.t, self.choice
        pairs = self.movable_pairs[choice[p.lead[self.movable_pairs]] < 0]
        assigned = np.flatnonzero((choice >= 0) & self.movable)
        if len(pairs) == 0 or len(assigned) == 0:
            return False
        at = p.rep[choice[assigned]]
        by_rep = np.argsort(at, kind="stable")
        assigned, at = assigned[by_rep], at[by_rep]
        first = np.searchsorted(at, p.rep[pairs], "left")
        count = np.searchsorted(at, p.rep[pairs], "right") - first
        pair = np.repeat(pairs, count)
        out = assigned[np.repeat(first - np.cumsum(count) + count, count) + np.arange(count.sum())]
        # a lead is only held when every rep it could go to is full
        room = self.used < p.capacity
        could_move = np.bincount(p.lead, room[p.rep], p.n_leads) > 0
        pair, out = pair[~could_move[out]], out[~could_move[out]]
        if len(pair) == 0:
            return False
        lead, r = p.lead[pair], p.rep[pair]
        de = p.lead_value[lead] - p.lead_value[out]
        da = p.top_tier[lead].astype(float) - p.top_tier[out]
        V, N = self.V, self.N
        ramp_top = float(N[p.ramp].sum())
        approx = (
            p.score[pair]
            - p.score[choice[out]]
            - (self.rep_penalty(r, V[r] + de, N[r] + da) - self.rep_penalty(r, V[r], N[r]))
            - (self.ramp_penalty(ramp_top + da * p.ramp[r]) - self.ramp_penalty(ramp_top))
        )
        now = objective(p, t, choice)
        best, best_gain = -1, 1e-9
        for k in np.argsort(-approx, kind="stable")[:EXCHANGE_TRIES]:
            trial = choice.copy()
            trial[lead[k]], trial[out[k]] = pair[k], -1
            gain = objective(p, t, trial) - now
            if gain > best_gain:
                best, best_gain = k, gain
        if best < 0:
            return False
        self.choice[lead[best]], self.choice[out[best]] = pair[best], -1
        self.V[r[best]] += de[best]
        self.N[r[best]] += da[best]
        self.lo, self.hi, self.top_cap, self.quota = t.limits(self.V.sum(), self.N.sum())
        return True

    def _apply(self, lead: int, pair: int, src: int, dst: int) -> None:
        e, a = self.p.lead_value[lead], float(self.p.top_tier[lead])
        self.V[src] -= e
        self.V[dst] += e
        self.N[src] -= a
        self.N[dst] += a
        self.used[src] -= 1
        self.used[dst] += 1
        self.choice[lead] = pair


def round_up(
    p: AssignmentProblem,
    choice: np.ndarray,
    x: np.ndarray,
    pairs: np.ndarray,
    fractional: np.ndarray,
) -> np.ndarray:
    """A feasible start for the repair: each fractional lead to its largest LP share with room."""
    out = choice.copy()
    left = p.capacity - np.bincount(p.rep[out[out >= 0]], minlength=p.n_reps)
    share = np.zeros(len(p.lead))
    share[pairs] = x
    start = p.lead_start
    for lead in np.flatnonzero(fractional):
        options = np.arange(start[lead], start[lead + 1])
        for j in options[np.argsort(-share[options], kind="stable")]:
            if left[p.rep[j]] > 0:
                left[p.rep[j]] -= 1
                out[lead] = j
                break
    return out


def place_held(p: AssignmentProblem, choice: np.ndarray) -> np.ndarray:
    """Assign the held leads that have candidates where a chain of moves makes room: the lead
    takes a full rep's slot, one of that rep's leads moves on to another of its reps, and so
    on to a rep with room (an augmenting path, breadth first). Rounding an LP can hold a lead
    whose reps the integral leads filled; the model holds a lead only when no such chain
    exists. Reps from which a search found no room are not searched again."""
    held = np.flatnonzero((choice < 0) & (np.diff(p.lead_start) > 0))
    if len(held) == 0:
        return choice
    choice = choice.copy()
    start, R = p.lead_start, p.n_reps
    used = np.bincount(p.rep[choice[choice >= 0]], minlength=R)
    dead = np.zeros(R, bool)
    for lead in held:
        # via[r] = (pair moving into r, rep it leaves or -1 for the held lead)
        via: dict[int, tuple[int, int]] = {}
        frontier = []
        for j in range(start[lead], start[lead + 1]):
            r = int(p.rep[j])
            if r not in via and not dead[r]:
                via[r] = (j, -1)
                frontier.append(r)
        end = next((r for r in frontier if used[r] < p.capacity[r]), None)
        while end is None and frontier:
            assigned = np.flatnonzero(choice >= 0)
            movers = assigned[np.isin(p.rep[choice[assigned]], frontier)]
            pairs = np.concatenate([np.arange(start[m], start[m + 1]) for m in movers])
            frontier = []
            for j in pairs:
                r = int(p.rep[j])
                if r in via or dead[r]:
                    continue
                via[r] = (int(j), int(p.rep[choice[p.lead[j]]]))
                frontier.append(r)
                if used[r] < p.capacity[r]:
                    end = r
                    break
        if end is None:
            dead[list(via)] = True
            continue
        used[end] += 1
        r = end
        while r >= 0:
            j, r = via[r]
            choice[p.lead[j]] = j
    return choice


def greedy_fill(
    p: AssignmentProblem,
    t: FairnessTerms,
    fixed: np.ndarray,
    free: np.ndarray,
    guide: np.ndarray,
) -> np.ndarray:
    """Fallback when the first LP stopped at a limit: the free leads in order of their best
    ``guide`` score (the dual's reduced scores, or the scores), each to the rep with room
    where its guide score minus the value-band penalty it would add is highest (the band's
    limits taken at the totals of every lead assigned), so that the greedy does not pile value
    on the reps it likes best."""
    choice = fixed.copy()
    taken = fixed >= 0
    R = p.n_reps
    left = p.capacity - np.bincount(p.rep[fixed[taken]], minlength=R)
    value = p.history_value + np.bincount(p.rep[fixed[taken]], p.lead_value[taken], R)
    low, high, _, _ = t.limits(*totals_if_all_assigned(p))
    start = p.lead_start
    leads = np.flatnonzero(free)
    best = np.maximum.reduceat(guide, start[:-1][leads]) if len(leads) else np.zeros(0)
    for lead in leads[np.argsort(-best, kind="stable")]:
        pairs = np.arange(start[lead], start[lead + 1])
        reps = p.rep[pairs]
        room = left[reps] > 0
        if not room.any():
            continue
        gain = guide[pairs]
        if t.value_on:
            e, v = p.lead_value[lead], value[reps]
            over = np.maximum(0.0, v + e - high[reps]) - np.maximum(0.0, v - high[reps])
            under = np.maximum(0.0, low[reps] - v) - np.maximum(0.0, low[reps] - v - e)
            gain = gain - t.value_penalty * (over - under)
        k = np.flatnonzero(room)[np.argmax(gain[room])]
        choice[lead] = pairs[k]
        left[reps[k]] -= 1
        value[reps[k]] += p.lead_value[lead]
    return choice
