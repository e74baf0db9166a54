// Runs an async function over items with at most `limit` in flight; after the first error no new item starts.

/** Like Promise.all over `items.map(fn)`, but never more than `limit` calls at once and no closure per item up front. */
export async function eachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length && !failed) {
      const item = items[next] as T;
      next += 1;
      try {
        await fn(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  });
  await Promise.all(lanes);
}
