/** The Election conformance suite on every backend: Memory (TestClock), IoRedis and Upstash (real servers). */
import { onEveryBackend } from "./conformance/backends.js"
import { electionConformance } from "./conformance/election.js"

onEveryBackend(electionConformance)
