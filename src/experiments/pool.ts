/**
 * Run async tasks with at most `jobs` of them in flight, in the order given. On the first failure
 * no further task starts; the ones already running are awaited (a study step is a child process
 * writing its run folder, so it is left to finish rather than orphaned), then that first error is
 * thrown. Results come back in the tasks' order.
 */
export async function runPool<T>(tasks: readonly (() => Promise<T>)[], jobs: number): Promise<T[]> {
  if (!Number.isInteger(jobs) || jobs < 1) throw new RangeError(`jobs must be a positive integer, got ${jobs}`);
  const results: T[] = new Array<T>(tasks.length);
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (failure === null && next < tasks.length) {
      const index = next++;
      try {
        results[index] = await tasks[index]!();
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, tasks.length) }, worker));
  if (failure !== null) throw (failure as { error: unknown }).error;
  return results;
}
