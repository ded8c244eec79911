/** Tests are TypeScript, run by ts-jest with the project's strict tsconfig. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: { isolatedModules: true } }] },
  // 'channelkit' imported by a test or a fixture is this repository's src/, never a built dist/ (one copy).
  moduleNameMapper: {
    '^channelkit$': '<rootDir>/src/index.ts',
    '^channelkit/testing$': '<rootDir>/src/testing/index.ts',
    '^channelkit/publisher$': '<rootDir>/src/publisher.ts',
    '^channelkit/client$': '<rootDir>/src/client/index.ts',
    // src/client/ is ES modules for browsers, so its imports name './room.js'; here that is room.ts.
    '^(\\./[\\w-]+)\\.js$': '$1',
  },
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  testTimeout: 30000,
};
