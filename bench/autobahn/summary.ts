// Reads an Autobahn report (index.json) and prints, per agent, the count of each behaviour, then every case
// where the first agent (channelkit) did worse than the second (ws).
import { readFileSync } from 'node:fs';

type Result = { behavior: string; behaviorClose: string };
const RANK: Record<string, number> = { OK: 0, INFORMATIONAL: 0, UNIMPLEMENTED: 0, 'NON-STRICT': 1, FAILED: 2 };

const file = process.argv[2] ?? 'reports/index.json';
const index = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Record<string, Result>>;
const agents = Object.keys(index);
for (const agent of agents) {
  const counts: Record<string, number> = {};
  for (const result of Object.values(index[agent])) counts[result.behavior] = (counts[result.behavior] ?? 0) + 1;
  process.stdout.write(`${agent}: ${JSON.stringify(counts)}\n`);
}
const [ours, theirs] = agents;
if (ours && theirs) {
  const byCase = (id: string): string[] => id.split('.').map((part) => part.padStart(4, '0'));
  const ids = Object.keys(index[ours]).sort((a, b) => (byCase(a).join('.') < byCase(b).join('.') ? -1 : 1));
  let worse = 0;
  for (const id of ids) {
    const a = index[ours][id];
    const b = index[theirs][id];
    if (!b) continue;
    const rank = (r: Result): number => Math.max(RANK[r.behavior] ?? 2, RANK[r.behaviorClose] ?? 2);
    if (rank(a) > rank(b)) {
      worse++;
      process.stdout.write(`worse ${id}: ${ours} ${a.behavior}/${a.behaviorClose}, ${theirs} ${b.behavior}/${b.behaviorClose}\n`);
    }
  }
  process.stdout.write(`${worse} cases where ${ours} is worse than ${theirs}\n`);
  for (const id of process.env.AB_CASES?.split(',') ?? []) {
    const a = index[ours][id];
    const b = index[theirs][id];
    process.stdout.write(`case ${id}: ${ours} ${a?.behavior}/${a?.behaviorClose}, ${theirs} ${b?.behavior}/${b?.behaviorClose}\n`);
  }
}
