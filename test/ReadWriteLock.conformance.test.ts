/** The ReadWriteLock and multi-id Lock conformance suites on every backend: Memory (TestClock), IoRedis and Upstash. */
import { onEveryBackend } from "./conformance/backends.js"
import { manyConformance } from "./conformance/many.js"
import { readWriteLockConformance } from "./conformance/readWriteLock.js"

onEveryBackend(readWriteLockConformance, manyConformance)
