/**
 * A node:test reporter that writes one line per skipped or todo test (file, name, reason) and
 * nothing else. scripts/test.sh runs it beside the spec reporter; under CI=true any line it writes
 * fails the run, because a reference test that never runs is a check that does not exist.
 */
export default async function* skippedTests(source) {
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { skip, todo, name, file } = event.data;
    const kind = skip !== undefined && skip !== false ? 'skipped' : todo !== undefined && todo !== false ? 'todo' : undefined;
    if (kind === undefined) continue;
    const reason = typeof (skip ?? todo) === 'string' ? `: ${skip ?? todo}` : '';
    yield `${kind} ${file ?? '?'} > ${name}${reason}\n`;
  }
}
