/** The Lock and Semaphore conformance suites on every backend: Memory (TestClock), IoRedis and Upstash (real servers). */
import { onEveryBackend } from "./conformance/backends.js"
import { lockConformance } from "./conformance/lock.js"
import { semaphoreConformance } from "./conformance/semaphore.js"

onEveryBackend(lockConformance, semaphoreConformance)
