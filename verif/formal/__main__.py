import sys

from verif.formal.run import main

sys.exit(main())
