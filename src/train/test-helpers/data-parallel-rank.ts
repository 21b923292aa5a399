/**
 * One rank of the data-parallel trainer test (src/train/distributed.test.ts), started as a child
 * process: `node --import tsx data-parallel-rank.ts RUN_DIR RANK WORLD PORT BATCH [DIE_AT_ITERATION]`.
 * It trains the tiny plan on the in-memory sphere stream, making only its share of every global
 * batch (shardedSphereLoader), and prints its epoch records as JSON on stdout. With
 * DIE_AT_ITERATION it exits (status 3) at that iteration of the first epoch, as a crashed rank.
 */
import { joinDataParallel } from '../distributed.js';
import { runTinyTraining } from '../test-support.js';

const [runDir, rankText, worldText, portText, batchText, dieText] = process.argv.slice(2);
const rank = Number(rankText);
const worldSize = Number(worldText);
const dataParallel = await joinDataParallel({ rank, worldSize, localRank: rank, host: '127.0.0.1', port: Number(portText), source: 'torchrun', networkInterface: null }, { timeoutMs: 30_000 });
const die = dieText === undefined ? null : Number(dieText);
const result = await runTinyTraining({
  runDir: runDir!,
  mode: 'fresh',
  numEpochs: 2,
  batchSize: Number(batchText),
  dataParallel,
  hooks: die === null ? [] : [{ onIteration: (_trainer, iteration) => void (iteration === die && process.exit(3)) }],
});
process.stdout.write(`${JSON.stringify(result.history)}\n`);
