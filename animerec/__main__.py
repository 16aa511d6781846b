from animerec.cli import main

raise SystemExit(main())
