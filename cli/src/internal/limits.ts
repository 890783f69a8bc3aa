/** The longest duration the library takes (2³¹ − 1 ms, about 24.8 days): a lease, a wait, a grace period. */
export const MAX_MILLIS = 2_147_483_647
