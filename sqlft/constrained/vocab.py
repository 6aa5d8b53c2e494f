"""The tokenizer's vocabulary as a character trie, so a state's allowed tokens are found by walking
only the branches it accepts."""

from __future__ import annotations

from typing import Any

from sqlft.constrained.lexer import SqlState


class _Node:
    __slots__ = ("children", "ids", "lo", "hi")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.ids: list[int] = []
        self.lo = self.hi = 0


class VocabTrie:
    """The tokenizer's vocabulary as a character trie of the (lower-cased) text each token adds.

    Special tokens (end of turn, chat markers) are not in the trie: they end the answer, which
    `SqlState.can_end` decides. `order[node.lo:node.hi]` are the tokens below a node.
    """

    def __init__(self, tokenizer: Any):
        import numpy as np

        self.size = len(tokenizer)
        self.pieces = token_pieces(tokenizer)
        special = set(tokenizer.all_special_ids) | {
            i for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items() if t.special
        }
        self.special_ids = {i for i in special if i < self.size}
        self.special = np.array(sorted(self.special_ids), dtype=np.int64)
        self.root = _Node()
        for token, piece in enumerate(self.pieces):
            if token in special or not piece:
                continue
            node = self.root
            for ch in piece.lower():
                node = node.children.setdefault(ch, _Node())
            node.ids.append(token)
        order: list[int] = []
        stack: list[tuple[_Node, bool]] = [(self.root, False)]
        while stack:  # number tokens in depth-first order, so a node's tokens are one slice
            node, done = stack.pop()
            if done:
                node.hi = len(order)
                continue
            node.lo = len(order)
            order.extend(node.ids)
            stack.append((node, True))
            stack.extend((child, False) for child in node.children.values())
        self.order = np.array(order, dtype=np.int64)

    def allowed(self, state: SqlState):
        """Boolean mask over the vocabulary: the tokens `state` accepts."""
        import numpy as np

        mask = np.zeros(self.size, dtype=bool)
        if state.can_end():
            mask[self.special] = True
        stack = [(self.root, state)]
        while stack:
            node, here = stack.pop()
            for ch, child in node.children.items():
                after = here.step(ch)
                if after is None:
                    continue
                if after.mode == "done":  # the statement ended: nothing below is checked
                    mask[self.order[child.lo : child.hi]] = True
                    continue
                mask[child.ids] = True
                stack.append((child, after))
        return mask

    def prefix_tokens(self, text: str) -> list[int]:
        """The longest tokens (in any case) whose text begins `text`: how a closing is written."""
        node, best = self.root, []
        for ch in text.lower():
            node = node.children.get(ch)
            if node is None:
                break
            best = node.ids or best
        return best


def token_pieces(tokenizer: Any) -> list[str]:
    """The text each token adds after others (a leading space kept, as decoding a sequence shows)."""
    anchor = tokenizer.convert_tokens_to_ids("a")
    if anchor is None or anchor == tokenizer.unk_token_id:
        anchor = tokenizer("a", add_special_tokens=False)["input_ids"][-1]
    base = tokenizer.decode([anchor])
    return [tokenizer.decode([anchor, i])[len(base) :] for i in range(len(tokenizer))]


_TRIES: dict[tuple[str, int], VocabTrie] = {}


def vocab_trie(tokenizer: Any) -> VocabTrie:
    """One trie per tokenizer (about a second to build for a 50k vocabulary)."""
    key = (getattr(tokenizer, "name_or_path", ""), len(tokenizer))
    if key not in _TRIES:
        _TRIES[key] = VocabTrie(tokenizer)
    return _TRIES[key]
