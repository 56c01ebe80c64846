from segmenta.interfaces.cli import main

main()
