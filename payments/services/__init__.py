"""Payments' writes, one module per use case: ``offline`` (money staff record), ``online`` (checkout, captures and
what a gateway says), ``installments`` (charged by beat, dunning), ``refunds``, ``schedules`` (deposits and
installments), ``statements`` (an agency's account), ``webhooks``, ``reconciliation``, ``fx``; ``paid`` is the one
place a booking's paid amount changes, and ``for_bookings`` answers the bookings app's questions about money."""
