"""Looking after what a deployment keeps: dead letters (`dead_letters`) and everything else that
would grow without bound (`prune`)."""
