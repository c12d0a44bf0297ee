from visdiff.cli import main

main()
