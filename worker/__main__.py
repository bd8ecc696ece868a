"""`python -m worker` runs the order worker."""

from worker.main import main

main()
