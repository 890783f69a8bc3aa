/** The Debounce conformance suite on every backend: Memory (TestClock), IoRedis and Upstash (real servers). */
import { onEveryBackend } from "./conformance/backends.js"
import { debounceConformance } from "./conformance/debounce.js"

onEveryBackend(debounceConformance)
