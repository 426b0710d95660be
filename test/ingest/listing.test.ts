import { describe, expect, it } from "vitest";
import {
  compareKeys,
  decodeListCursor,
  encodeListCursor,
  InvalidCursorError,
  mergeShardPages,
  prefixSuccessor,
  sortKeyCondition,
} from "../../functions/core/documents/listing";
import {
  DOCUMENTS_PARTITION,
  documentsPartition,
  documentsPartitions,
  INDEX_SHARDS,
  shardOf,
} from "../../functions/core/documents/table";

const item = (key: string) => ({ documentId: `id-${key}`, key });

describe("listing helpers", () => {
  it("orders keys as DynamoDB does (UTF-8 bytes), not as JavaScript compares UTF-16", () => {
    const astral = "\u{1F600}"; // a surrogate pair in UTF-16, 4 bytes F0.. in UTF-8
    const bmp = "\uFF10"; // above the surrogates in UTF-16 order, below F0 in UTF-8
    expect(astral < bmp).toBe(true);
    expect(compareKeys(astral, bmp)).toBeGreaterThan(0);
    expect(["b", "a/", "a"].sort(compareKeys)).toEqual(["a", "a/", "b"]);
  });

  it("finds the end of a prefix range", () => {
    expect(prefixSuccessor("reports/")).toBe("reports0");
    expect(prefixSuccessor("a\u{10FFFF}")).toBe("b");
    expect(prefixSuccessor("\u{10FFFF}")).toBeUndefined();
    expect(prefixSuccessor("x\uD7FF")).toBe("x\uE000");
    expect(sortKeyCondition("#sk", "p/", undefined)).toEqual({
      expression: "begins_with(#sk, :prefix)",
      values: { ":prefix": "p/" },
    });
    expect(sortKeyCondition("#sk", "p/", "p/b")).toEqual({
      expression: "#sk BETWEEN :after AND :end",
      values: { ":after": "p/b", ":end": "p0" },
    });
    expect(sortKeyCondition("#sk", undefined, "m")).toEqual({
      expression: "#sk > :after",
      values: { ":after": "m" },
    });
  });

  it("returns matches only up to the frontier the shards were all read to, with a cursor there", () => {
    const merged = mergeShardPages(
      [
        { items: [item("a"), item("k")], last: "m" },
        { items: [item("c"), item("z")], last: "e" },
        { items: [item("d")] },
      ],
      { limit: 10 },
    );
    expect(merged.items.map((i) => i.key)).toEqual(["a", "c", "d"]);
    expect(merged.next).toBe("e");
  });

  it("cuts a full page at its last key; drops the cursor's own key and keys outside the prefix", () => {
    const pages = [{ items: [item("p/a"), item("p/b"), item("p/c"), item("p0")] }, { items: [item("p/d")] }];
    expect(mergeShardPages(pages, { limit: 2, prefix: "p/" })).toEqual({
      items: [item("p/a"), item("p/b")],
      next: "p/b",
    });
    expect(mergeShardPages(pages, { limit: 5, prefix: "p/", after: "p/b" })).toEqual({
      items: [item("p/c"), item("p/d")],
      next: undefined,
    });
  });

  it("round-trips cursors, reads the unsharded layout's, refuses anything else", () => {
    expect(decodeListCursor(encodeListCursor("a/b"), "gsi1sk")).toBe("a/b");
    const legacy = Buffer.from(
      JSON.stringify({ gsi1pk: "DOCS", gsi1sk: "x", pk: "DOC#1", sk: "DOC" }),
    ).toString("base64url");
    expect(decodeListCursor(legacy, "gsi1sk")).toBe("x");
    expect(() => decodeListCursor("not-a-cursor", "gsi1sk")).toThrow(InvalidCursorError);
  });
});

describe("index shards", () => {
  it("spread documents evenly over every shard, each document always in the same one", () => {
    const counts = new Array(INDEX_SHARDS).fill(0);
    for (let i = 0; i < 8_000; i++) counts[shardOf(`doc-${i}`)]++;
    expect(Math.min(...counts)).toBeGreaterThan(800);
    expect(Math.max(...counts)).toBeLessThan(1_200);
    expect(shardOf("doc-7")).toBe(shardOf("doc-7"));
    expect(documentsPartitions()).toContain(documentsPartition("doc-7"));
    // Shard 0 keeps the unsharded layout's value, so items written before sharding stay listed.
    expect(documentsPartitions()[0]).toBe(DOCUMENTS_PARTITION);
  });
});
