from visdiff.entry import main

main()
