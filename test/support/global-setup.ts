// Runs once before the tests: Redis suites need a redis-server binary; say so loudly when it is missing.
import { hasRedisServer } from './redis';

export default function globalSetup(): void {
  if (hasRedisServer()) return;
  const notice = 'redis-server not found: every Redis test suite is SKIPPED (apt-get install redis-server)';
  if (process.env.CI === 'true') throw new Error(`${notice}; under CI=true this is a failure`);
  process.stderr.write(`\n${'!'.repeat(100)}\n!!! ${notice}\n${'!'.repeat(100)}\n\n`);
}
