"""What every saga of the OMS shares (the order saga of order_intake, the returns saga): where a
saga row, its timeline and the Idempotency-Keys of the API that starts it are kept (`store`,
parameterised by the service's own tables, which its migrations create), the loop that finds
sagas whose deadline passed and hands them to the service (`deadlines`), and the
Idempotency-Key handling of the HTTP route that starts a saga (`idempotency`), and the pure
shape of a decision and of a refused request (`decisions`). The sagas' decisions stay in each
service's pure domain module.
"""
